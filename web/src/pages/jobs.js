import { get } from '../api.js';
import { clear, h } from '../dom.js';
import { t } from '../i18n.js';

// Follow a job (GET /api/v1/jobs/:id) once a second until it is done or
// failed, showing its state and progress in box.  Resolves with the job.
export async function followJob(jobId, box, canRead) {
  const line = h('p', { class: 'job', role: 'status', dataset: { job: String(jobId) } });
  clear(box).appendChild(line);
  if (!canRead) {
    line.textContent = t('job.queued', { id: jobId });
    return null;
  }
  for (;;) {
    let j;
    try {
      j = await get('/api/v1/jobs/' + jobId);
    } catch (e) {
      line.textContent = t('error', { msg: e.message });
      return null;
    }
    if (!box.isConnected) return j;
    const prog = j.progress && typeof j.progress === 'object'
      ? Object.entries(j.progress).map(([k, v]) => `${k}=${v}`).join(' ') : '';
    clear(line).append(t('job.state', { id: j.id, kind: j.kind, state: t('job.' + j.state) }),
      prog ? ' · ' + prog : '', j.last_error ? ' · ' + j.last_error : '');
    line.dataset.state = j.state;
    line.className = 'job ' + (j.state === 'done' ? 'ok' : j.state === 'failed' ? 'error' : '');
    if (j.state === 'done' || j.state === 'failed') return j;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

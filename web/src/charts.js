// Apache ECharts, only what the dashboard draws: calendar heatmap, bars, pie.
import * as echarts from 'echarts/core';
import { BarChart, HeatmapChart, PieChart } from 'echarts/charts';
import { CalendarComponent, GridComponent, TooltipComponent, VisualMapComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([BarChart, HeatmapChart, PieChart, CalendarComponent, GridComponent, TooltipComponent,
             VisualMapComponent, CanvasRenderer]);

const live = new Set();

// A chart in el; disposed when el leaves the document.  Tooltips are drawn
// on the canvas (richText): the page's CSP allows no inline style markup.
export function chart(el, option, onClick) {
  const c = echarts.init(el, null, { renderer: 'canvas' });
  option.tooltip = { renderMode: 'richText', ...(option.tooltip || {}) };
  option.animation = false;
  c.setOption(option);
  if (onClick) c.on('click', onClick);
  live.add(c);
  return c;
}

function sweep() {
  for (const c of live) {
    const dom = c.getDom();
    if (!dom || !dom.isConnected) {
      c.dispose();
      live.delete(c);
    } else {
      c.resize();
    }
  }
}
window.addEventListener('resize', sweep);
window.addEventListener('hashchange', () => setTimeout(sweep, 0));

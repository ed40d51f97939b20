"""The server's operations API: scans queued as jobs and watched, endpoints
and findings, managed certificates issued from Pebble and renewed on
demand, ACME CAs and accounts; on SQLite and PostgreSQL."""

import json
import os
import re
import subprocess
import time

import pytest

from acme_pebble import Pebble, free_port, pebble_ca, wait_port, write_config
from test_server import ADMIN_PW, PW, Server


@pytest.fixture(scope="module")
def peb(tmp_path_factory):
    p = Pebble(tmp_path_factory.mktemp("pebble-ops")).start()
    yield p
    p.stop()


def wait_job(server, sess, location, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, job, _ = server.request("GET", location, session=sess)
        assert st == 200, job
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.3)
    pytest.fail("job %s did not finish: %r" % (location, job))


@pytest.fixture
def tls_server(tmp_path):
    """openssl s_server with a self-signed certificate on a free port."""
    d = str(tmp_path)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/k.pem", "-out",
                    d + "/c.pem", "-days", "30", "-subj", "/CN=selfsigned.test"],
                   check=True, capture_output=True)
    port = free_port()
    p = subprocess.Popen(["openssl", "s_server", "-quiet", "-accept", "127.0.0.1:%d" % port,
                          "-cert", d + "/c.pem", "-key", d + "/k.pem", "-www"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, p, "openssl s_server")
    yield port
    p.kill()
    p.wait()


def test_scan_through_the_api(aclm, tls_server):
    s = Server(aclm, config="scheduler:\n  interval: 1s\nscan:\n  rescan_interval: 2s\n")
    try:
        admin = s.login("admin", ADMIN_PW)
        st, nodes, _ = s.request("GET", "/api/v1/nodes", session=admin)
        assert st == 200 and len(nodes["items"]) == 1 and nodes["items"][0]["kind"] == "server"
        assert nodes["items"][0]["address"] == "https://127.0.0.1:%d/" % s.port
        st, body, _ = s.request("POST", "/api/v1/users",
                                {"name": "v", "password": PW, "role": "viewer"}, session=admin)
        viewer = s.login("v", PW)
        req = {"targets": ["127.0.0.1"], "ports": str(tls_server)}
        st, body, _ = s.request("POST", "/api/v1/scans", req, session=viewer)
        assert st == 403
        # bad targets: named with their position, nothing queued
        st, body, _ = s.request("POST", "/api/v1/scans", {"targets": ["127.0.0.1", "300.1.2.3"]},
                                session=admin)
        assert st == 400 and "300.1.2.3" in body["detail"], body
        st, body, _ = s.request("POST", "/api/v1/scans", {"targets": "x"}, session=admin)
        assert st == 400
        st, job, r = s.request("POST", "/api/v1/scans", req, session=admin)
        assert st == 202, job
        loc = r.getheader("Location")
        job = wait_job(s, admin, loc)
        assert job["state"] == "done", job
        assert job["progress"]["endpoints_done"] == 1
        scan_id = job["result"]["scan_id"]
        st, scan, _ = s.request("GET", "/api/v1/scans/%d" % scan_id, session=viewer)
        assert st == 200 and scan["status"] == "done" and scan["endpoints"] == 1
        st, eps, _ = s.request("GET", "/api/v1/endpoints?host=127.0.0.1", session=viewer)
        ep = [e for e in eps["items"] if e["port"] == tls_server]
        assert ep and ep[0]["reachable"] is True and "TLSv1.3" in ep[0]["versions"]
        assert ep[0]["pq_groups"] == "none" and ep[0]["leaf_cert_id"]
        st, found, _ = s.request("GET", "/api/v1/findings", session=viewer)
        types = {f["type"] for f in found["items"] if f["port"] == tls_server}
        assert any("self" in t or "untrusted" in t for t in types), types
        # the scanned certificate is in the inventory
        st, c, _ = s.request("GET", "/api/v1/certificates/%d" % ep[0]["leaf_cert_id"],
                             session=viewer)
        assert st == 200 and c["subject_cn"] == "selfsigned.test"
        st, text, _ = s.request("GET", "/metrics", session=viewer)
        assert re.search(r'^aclm_scans_total [1-9]\d*$', text.decode(), re.M)
        assert re.search(r'^aclm_endpoints_pq\{pq="none"\} 1$', text.decode(), re.M)
        # the known endpoint is rescanned on its own (scan.rescan_interval)
        deadline = time.time() + 30
        while time.time() < deadline:
            st, scans, _ = s.request("GET", "/api/v1/scans", session=viewer)
            if len([x for x in scans["items"] if x["status"] == "done"]) >= 2:
                break
            time.sleep(0.5)
        assert len(scans["items"]) >= 2, scans
        assert "--known" in scans["items"][0]["targets"], scans["items"][0]
        # audit: who asked for the scan
        ev = aclm.sql("SELECT detail FROM events WHERE type = 'api.request'")
        assert any(json.loads(d[0])["route"] == "/api/v1/scans" and
                   json.loads(d[0])["status"] == 202 for d in ev)
    finally:
        rc, _, err = s.stop()
    assert rc == 0, err


def test_managed_certificate_through_the_api(aclm, peb):
    path = write_config(aclm, [pebble_ca(peb)], "scheduler:\n  interval: 1s\n")
    s = Server(aclm, config=open(path).read())
    try:
        admin = s.login("admin", ADMIN_PW)
        st, acme, _ = s.request("GET", "/api/v1/acme", session=admin)
        assert st == 200 and [c["name"] for c in acme["cas"]] == ["pebble"]
        assert acme["cas"][0]["eab"] is False
        for bad in ({"names": []}, {"names": ["a.example.test"], "cas": ["nope"]},
                    {"names": ["a.example.test"], "key": 7}):
            st, body, _ = s.request("POST", "/api/v1/managed", bad, session=admin)
            assert st == 400, (bad, body)
        req = {"names": ["m.example.test"], "cas": ["pebble"],
               "standalone": "127.0.0.1:%d" % peb.http_port}
        st, job, r = s.request("POST", "/api/v1/managed", req, session=admin)
        assert st == 202, job
        job = wait_job(s, admin, r.getheader("Location"))
        assert job["state"] == "done", job
        st, man, _ = s.request("GET", "/api/v1/managed", session=admin)
        assert len(man["items"]) == 1
        m = man["items"][0]
        assert m["identifiers"] == ["m.example.test"] and m["current_cert_id"]
        first = m["current_cert_id"]
        # renew now, through the scheduler
        st, body, _ = s.request("POST", "/api/v1/managed/%d/renew" % m["id"], session=admin)
        assert st == 202, body
        deadline = time.time() + 90
        while time.time() < deadline:
            st, one, _ = s.request("GET", "/api/v1/managed/%d" % m["id"], session=admin)
            if one["current_cert_id"] != first:
                break
            time.sleep(0.5)
        assert one["current_cert_id"] != first, one
        assert len(one["history"]) == 2 and all(o["state"] == "done" for o in one["history"])
        st, acme, _ = s.request("GET", "/api/v1/acme", session=admin)
        assert len(acme["accounts"]) == 1
        assert s.request("POST", "/api/v1/managed/99999/renew", session=admin)[0] == 404
        # change the key type; it applies at the next renewal
        for bad_patch in ({"key": "dsa512"}, {"cas": ["nope"]}, {"challenge": "carrier-pigeon"},
                          {"cas": []}):
            st, body, _ = s.request("PATCH", "/api/v1/managed/%d" % m["id"], bad_patch,
                                    session=admin)
            assert st == 400, (bad_patch, body)
        st, upd, _ = s.request("PATCH", "/api/v1/managed/%d" % m["id"], {"key": "rsa2048"},
                               session=admin)
        assert st == 200 and upd["key_type"] == "rsa2048", upd
        st, text, _ = s.request("GET", "/metrics", session=admin)
        text = text.decode()
        m2 = re.search(r'^aclm_managed_certificate_expiry_seconds\{id="%d",name="[^"]*",'
                       r'status="valid"\} (\d+)$' % m["id"], text, re.M)
        assert m2 and int(m2.group(1)) > 0, text
        assert 'aclm_acme_orders_total{ca="pebble",result="done"} 2' in text
        # stop managing it: the certificates stay, the history goes, the audit log says who
        n_certs = len(aclm.list())
        st, body, _ = s.request("DELETE", "/api/v1/managed/%d" % m["id"], session=admin)
        assert st == 200, body
        assert s.request("GET", "/api/v1/managed", session=admin)[1]["items"] == []
        assert s.request("DELETE", "/api/v1/managed/%d" % m["id"], session=admin)[0] == 404
        assert len(aclm.list()) == n_certs
        ev = aclm.sql("SELECT subject, detail FROM events WHERE type = 'managed.deleted'")
        assert ev and json.loads(ev[0][1])["actor"] == "user:admin"
    finally:
        rc, _, err = s.stop()
    assert rc == 0, err
    assert "runtime error" not in err and "AddressSanitizer" not in err


def test_scheduled_reports_reach_the_channel(aclm, tmp_path):
    """reports.channel + reports.every: the server sends the reports through
    the alert channel on its own, once per period."""
    from test_alerts import Receiver
    r = Receiver()
    try:
        aclm.run("alert", "channel", "add", "ops", "--kind", "webhook", "--url",
                 r.url("/reports"), check_rc=0)
        cfg = ("scheduler:\n  interval: 1s\nalerts:\n  interval: 1s\n"
               "reports:\n  channel: ops\n  every: 3s\n  kinds: [expiry, algorithms]\n")
        s = Server(aclm, config=cfg)
        try:
            assert r.wait(2, timeout=40), r.requests
            bodies = [json.loads(x["body"]) for x in r.requests[:2]]
            texts = " ".join(b.get("text", "") + " " + b.get("subject", "") for b in bodies)
            assert "expiry" in texts and "algorithms" in texts, bodies
            sess = s.login("admin", ADMIN_PW)
            st, jobs, _ = s.request("GET", "/api/v1/jobs?state=done", session=sess)
            assert {j["subject"] for j in jobs["items"] if j["kind"] == "report"} >= \
                {"expiry", "algorithms"}
        finally:
            rc, _, err = s.stop()
        assert rc == 0, err
    finally:
        r.close()

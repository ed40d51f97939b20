"""What the dashboard's endpoints page asks of the API: the most severe
findings with their total (GET /api/v1/findings?limit=N), so a page showing
200 of thousands does not carry them all; the full list as before without
limit.  The findings come from a real scan of loopback listeners that
answer without TLS."""

import socket
import threading

from test_server import ADMIN_PW, Server


def not_tls_listeners(n):
    socks = []

    def serve(s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                c.sendall(b"220 this is not TLS\r\n" * 3)
                c.close()
            except OSError:
                pass

    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        socks.append(s)
        threading.Thread(target=serve, args=(s,), daemon=True).start()
    return socks


def test_findings_limit_and_total(aclm):
    socks = not_tls_listeners(3)
    try:
        aclm.run("scan", *["127.0.0.1:%d" % s.getsockname()[1] for s in socks], check_rc=0)
    finally:
        for s in socks:
            s.close()
    s = Server(aclm)
    try:
        admin = s.login("admin", ADMIN_PW)
        st, all_, _ = s.request("GET", "/api/v1/findings", session=admin)
        assert st == 200 and all_["total"] == len(all_["items"]) == 3, all_
        assert {f["type"] for f in all_["items"]} == {"not-tls"}
        st, some, _ = s.request("GET", "/api/v1/findings?limit=2", session=admin)
        assert st == 200 and some["total"] == 3 and len(some["items"]) == 2, some
        # the first ones of the same order
        assert [f["id"] for f in some["items"]] == [f["id"] for f in all_["items"][:2]]
        st, one, _ = s.request("GET", "/api/v1/findings?limit=5&type=not-tls", session=admin)
        assert one["total"] == 3 and len(one["items"]) == 3
        st, none, _ = s.request("GET", "/api/v1/findings?limit=2&type=expired", session=admin)
        assert none == {"items": [], "total": 0}
        for bad in ("0", "-1", "x", "1001"):
            st, r, _ = s.request("GET", "/api/v1/findings?limit=" + bad, session=admin)
            assert st == 400 and "limit" in r["detail"], (bad, r)
    finally:
        rc, out, err = s.stop()
        assert "runtime error" not in err and "AddressSanitizer" not in err, err

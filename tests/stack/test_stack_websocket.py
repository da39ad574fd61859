"""Browser clients on the deployment topology (deploy/stack, like compose): HAProxy ends
TLS on its WebSocket port and passes /xmpp-websocket and the XEP-0156 host-meta documents
to the frontends' plain ws_listen ports with a PROXY v2 header; the client's own address
reaches the frontend's log; a WebSocket client and a TCP client chat; anything else is
answered 404 by HAProxy; a dead frontend's WebSocket clients come back on the other one."""


from localstack import NFE
from ws_client import (NS_FRAMING, WSLibClient, exchange_messages, host_meta_websocket_urls,
                       url_get)
from xmpp_client import NS_SASL, q


def ws_client(lstack, made):
    c = WSLibClient(lstack.ws_url, cafile=lstack.cafile)
    made.append(c)
    return c


def test_wss_through_haproxy_logs_in_with_scram_and_chats_with_a_tcp_client(lstack, clients):
    made = []
    try:
        a, b = lstack.new_user("wsa"), lstack.new_user("tcpb")
        tcp = clients()
        tcp.login(b.localpart, b.password, resource="tcp")
        tcp.presence()
        ws = ws_client(lstack, made)
        assert ws.subprotocol == "xmpp"
        features = ws.open_stream()
        assert ws.header["from"] == "localhost" and ws.header.get("version") == "1.0", ws.header
        assert ws.headers[0][0] == q(NS_FRAMING, "open")
        assert "SCRAM-SHA-1" in ws.mechanisms(features)
        assert features.find(q(NS_SASL, "mechanisms")) is not None
        assert ws.auth(a.localpart, a.password, "SCRAM-SHA-1") == "success"
        ws.bind("browser")
        assert ws.jid.startswith(a.jid + "/")
        # The frontend logged the login from the browser's own address and port (the PROXY
        # header through HAProxy's HTTP mode), not HAProxy's.
        assert lstack.frontend_of(ws, a) in ["c2s%d" % i for i in range(1, NFE + 1)]
        exchange_messages(ws, tcp)
        ws.end_stream()
    finally:
        for c in made:
            c.close()


def test_host_meta_through_haproxy_names_the_wss_url(lstack):
    # ws_url is empty: the frontends build it from the Host the client used and
    # X-Forwarded-Proto (HAProxy ended TLS), so it is this port's wss URL.
    xrd, js = host_meta_websocket_urls(lstack.ws_url, lstack.cafile)
    assert xrd == [lstack.ws_url] and js == [lstack.ws_url], (xrd, js)


def test_other_paths_get_404_from_haproxy(lstack):
    for path in ("/", "/metrics", "/xmpp-websocket/x", "/.well-known/host-meta.xml"):
        status, headers, body = url_get(lstack.ws_url, path, lstack.cafile)
        assert status == 404, (path, status, body[:200])
        assert body.strip() == b"not found", (path, body[:200])


def test_websocket_clients_of_a_killed_frontend_log_in_again_on_the_other(lstack):
    made = []
    u = lstack.new_user("wsk")
    first = ws_client(lstack, made)
    first.login(u.localpart, u.password, mech="SCRAM-SHA-1", resource="one")
    doomed = lstack.frontend_of(first, u)
    lstack.run("kill", doomed)
    try:
        first.assert_closed()
        # Connections to the dead frontend are refused; HAProxy redispatches them (and its
        # health check takes the frontend out): every new login lands on a live one.
        for i in range(4):
            c = ws_client(lstack, made)
            c.login(u.localpart, u.password, mech="SCRAM-SHA-1", resource="again%d" % i)
            assert lstack.frontend_of(c, u) != doomed
            assert c.ping().get("type") == "result"
    finally:
        for c in made:
            c.close()
        lstack.run("start", doomed)

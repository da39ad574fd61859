"""Browser clients through a load balancer's WebSocket port (a running stack, e.g. the
compose stack: XMPP_WSS_URL=wss://localhost:PORT/xmpp-websocket, XMPP_CAFILE its
certificate): HAProxy ends TLS and passes the RFC 7395 WebSocket to a frontend; a WebSocket
client logs in with SCRAM and chats with a TCP client; host-meta (XEP-0156) names the URL;
anything else is answered 404. Skipped without XMPP_WSS_URL (the private test stack has no
balancer: tests/integration/test_websocket.py tests the frontends' own listeners)."""

import os
import uuid

import pytest

from ws_client import (NS_FRAMING, WSLibClient, exchange_messages, host_meta_websocket_urls,
                       url_get)
from xmpp_client import q

WSS_URL = os.environ.get("XMPP_WSS_URL", "")

pytestmark = pytest.mark.skipif(
    not WSS_URL, reason="WebSocket through a load balancer: needs a running stack's "
                        "XMPP_WSS_URL (deploy/compose-test sets it)")


@pytest.fixture
def ws_clients(stack):
    made = []

    def make():
        c = WSLibClient(WSS_URL, cafile=os.environ.get("XMPP_CAFILE") or None)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def test_wss_logs_in_with_scram_and_chats_with_a_tcp_client(stack, login, new_user, ws_clients):
    a, b = new_user("wsa"), new_user("tcpb")
    tcp = login(b, resource="tcp")
    tcp.presence()
    ws = ws_clients()
    assert ws.subprotocol == "xmpp"
    features = ws.open_stream()
    assert ws.headers[0][0] == q(NS_FRAMING, "open")
    assert ws.header["from"] == "localhost" and ws.header.get("version") == "1.0", ws.header
    assert "SCRAM-SHA-1" in ws.mechanisms(features)
    assert ws.auth(a.localpart, a.password, "SCRAM-SHA-1") == "success"
    ws.bind("browser")
    assert ws.jid.startswith(a.jid + "/")
    exchange_messages(ws, tcp)
    ws.end_stream()


def test_many_websocket_clients_spread_over_the_frontends_reach_each_other(stack, new_user,
                                                                          ws_clients):
    # leastconn puts consecutive long sessions on different frontends; each pair must talk.
    users = [new_user("wsm") for _ in range(4)]
    cs = []
    for i, u in enumerate(users):
        c = ws_clients()
        c.login(u.localpart, u.password, mech="SCRAM-SHA-1", resource="r%d" % i)
        cs.append(c)
    for i, a in enumerate(cs):
        b = cs[(i + 1) % len(cs)]
        token = "wsm-" + uuid.uuid4().hex[:8]
        a.message(b.jid, token)
        assert b.wait_message(token).get("from") == a.jid


def test_host_meta_names_the_wss_url(stack):
    xrd, js = host_meta_websocket_urls(WSS_URL, os.environ.get("XMPP_CAFILE") or None)
    assert xrd == [WSS_URL] and js == [WSS_URL], (xrd, js)


def test_other_paths_get_404(stack):
    for path in ("/", "/metrics", "/upload", "/xmpp-websocket/x"):
        status, _, body = url_get(WSS_URL, path, os.environ.get("XMPP_CAFILE") or None)
        assert status == 404, (path, status, body[:200])

"""Other servers reach the deployment topology (deploy/stack, like compose) through HAProxy:
its s2s port (5269 in production) and its direct TLS port (5270, XEP-0368) lead to the s2s
frontends (c2s-frontend with s2s_listen and s2s_tls_listen, no client listener) with a
PROXY v2 header, which the frontends read on their server listeners too: the frontend
names the remote server's own address, not HAProxy's. Two connections open at once land
on both s2s frontends (HAProxy balances by least connections).

What happens after a remote server has authenticated is tested in
tests/integration/test_s2s_stream.py (a private frontend) and test_s2s_prosody.py."""

import socket
import time
from xml.sax.saxutils import quoteattr

from localstack import DOMAIN, NS2S
from xmpp_client import NS_TLS, XMPPClient, q

ORIGIN = "remote.example"


class ServerPeer(XMPPClient):
    """The initiating side of a server-to-server stream (jabber:server, from = ORIGIN),
    without a certificate of its own."""

    def __init__(self, port, cafile, direct_tls=False):
        super().__init__(port, domain=DOMAIN, cafile=cafile)
        if direct_tls:
            self.sock = self.ssl_context().wrap_socket(self.sock, server_hostname=DOMAIN)
            self.tls = True

    def stream_header(self, to=None):
        return ("<?xml version='1.0'?><stream:stream to=%s from=%s version='1.0' "
                "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
                % (quoteattr(to or self.domain), quoteattr(ORIGIN)))

    def own_address(self):
        return "127.0.0.1:%d" % self.sock.getsockname()[1]


def served_by(lstack, peer, timeout=5.0):
    """The s2s frontend that logged this peer's TLS stream without a client certificate,
    under the peer's own address (from the PROXY header)."""
    needle = "s2s from %s (%s): no SASL EXTERNAL" % (ORIGIN, peer.own_address())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [i for i in range(1, NS2S + 1) if needle in lstack.log("s2s%d" % i)]
        if found:
            assert len(found) == 1, found
            return "s2s%d" % found[0]
        time.sleep(0.05)
    raise AssertionError("no s2s frontend logged %r" % needle)


def test_server_stream_through_haproxy_gets_starttls(lstack):
    p = ServerPeer(lstack.s2s_port, lstack.cafile)
    try:
        features = p.open_stream()
        assert p.header.get("from") == DOMAIN and p.header.get("to") == ORIGIN, p.header
        tls = features.find(q(NS_TLS, "starttls"))
        assert tls is not None and tls.find(q(NS_TLS, "required")) is not None, features
        # TLS with the stack's certificate for the domain, then a restarted stream.
        p.starttls()
        assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert p.features.find(q(NS_TLS, "starttls")) is None
        served_by(lstack, p)
    finally:
        p.close()


def test_direct_tls_through_haproxy(lstack):
    p = ServerPeer(lstack.s2s_tls_port, lstack.cafile, direct_tls=True)
    try:
        p.open_stream()
        assert p.header.get("from") == DOMAIN, p.header
        assert p.features.find(q(NS_TLS, "starttls")) is None
        served_by(lstack, p)
    finally:
        p.close()


def test_client_stream_on_the_server_port_is_refused(lstack):
    c = XMPPClient(lstack.s2s_port, cafile=lstack.cafile)
    try:
        c.send(c.stream_header())
        c.expect_stream_error("invalid-namespace")
    finally:
        c.close()


def test_both_s2s_frontends_serve(lstack):
    """Streams held open at the same time go to different s2s frontends."""
    assert NS2S >= 2
    peers = []
    try:
        for _ in range(NS2S):
            p = ServerPeer(lstack.s2s_port, lstack.cafile)
            p.open_stream()
            p.starttls()
            peers.append(p)
        got = sorted(served_by(lstack, p) for p in peers)
        assert got == ["s2s%d" % i for i in range(1, NS2S + 1)], got
    finally:
        for p in peers:
            p.close()


def test_nothing_but_haproxy_may_connect(lstack):
    """The s2s frontends require the PROXY header (proxy_protocol): a server stream sent
    straight to one is closed without an answer (a reset: our bytes were left unread)."""
    port = lstack.base + 62  # s2s1's s2s_listen (deploy/stack, --base-port)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("<?xml version='1.0'?><stream:stream to='%s' from='%s' version='1.0' "
                   "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
                   % (DOMAIN, ORIGIN)).encode())
        s.settimeout(5)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert data == b"", data
        local = "127.0.0.1:%d" % s.getsockname()[1]
    assert "no valid PROXY header from %s" % local in lstack.log("s2s1")

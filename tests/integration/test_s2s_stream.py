"""Server-to-server streams of the frontend (README, "Federation"; RFC 6120, XEP-0178),
driven by a raw test peer in Python against a private frontend with s2s_listen set.

A test CA made here signs the frontend's certificate (for `localhost`, its tls_cert, also
presented as client certificate on outbound streams) and the peers' certificates
(remote.test, other.test, and one naming xmpp.test only by an XmppAddr); the frontend's
s2s_ca_file is that CA.

Inbound: a header to a domain we do not host gets <host-unknown/>; a stanza before
authentication <not-authorized/>; STARTTLS then SASL EXTERNAL with a certificate naming the
header's 'from' succeeds (also by XmppAddr), with one naming another domain EXTERNAL is not
offered and fails; on the authenticated stream a spoofed 'from' gets <invalid-from/>, a 'to'
outside our domains <host-unknown/>, an oversized stanza <policy-violation/>, and a valid
message is taken without a stream error (and reaches the local user once the router routes
IPC_S2S_IN).

Server Dialback (XEP-0220) on a frontend with s2s_secure_auth off and a known secret: it
answers <db:verify/> as the authoritative server from the secret alone, and a <db:result/>
whose authoritative server cannot be reached gets type='invalid'; with s2s_secure_auth on,
no dialback is offered or taken. (Dialback end to end, both ways, is in
test_s2s_prosody.py.)

Outbound: the test peer plays remote.test (s2s_static_hosts points at it): a local user's
message to someone@remote.test arrives over STARTTLS with our certificate, after SASL
EXTERNAL with authzid localhost; to a domain whose address refuses connections the user
gets <remote-server-not-found/> from us. (Both go through the router: IPC_S2S_OUT.)
"""

import base64
import hashlib
import hmac
import os
import queue
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from conftest import READY_TIMEOUT, Frontend, free_port, wait_port, wait_probe_login
from xmpp_client import (NS_SASL, NS_STANZAS, NS_TLS, StreamClosed,
                         StreamParser, XMPPClient, child_conditions, dump, q)

NS_SERVER = "jabber:server"
NS_DB = "jabber:server:dialback"
NS_DB_FEATURE = "urn:xmpp:features:dialback"

# ------------------------------------------------------------------ certificates
def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def make_ca(d):
    ca, key = d / "ca.pem", d / "ca.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(ca), "-days", "2", "-subj", "/CN=s2s test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return ca, key


def make_leaf(d, ca, ca_key, name, san):
    """A certificate signed by the test CA with subjectAltName `san` (and CN `name`)."""
    cert, key, csr, ext = (d / (name + ".pem"), d / (name + ".key"), d / (name + ".csr"),
                           d / (name + ".ext"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", "/CN=" + name)
    ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=%s\n"
                   "extendedKeyUsage=serverAuth,clientAuth\n" % san)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    os.chmod(key, 0o644)
    return cert, key


class Certs:
    pass


@pytest.fixture(scope="module")
def certs():
    d = Path(tempfile.mkdtemp(prefix="xmpp-s2s-"))
    os.chmod(d, 0o755)
    c = Certs()
    c.ca, c.ca_key = make_ca(d)
    c.local = make_leaf(d, c.ca, c.ca_key, "localhost", "DNS:localhost")
    c.remote = make_leaf(d, c.ca, c.ca_key, "remote.test", "DNS:remote.test")
    c.other = make_leaf(d, c.ca, c.ca_key, "other.test", "DNS:other.test")
    c.xmppaddr = make_leaf(d, c.ca, c.ca_key, "xmppaddr",
                           "otherName:1.3.6.1.5.5.7.8.5;UTF8:xmpp.test")
    # an internationalised domain, bücher.test: its DNS-ID is in A-labels (RFC 6125 6.4.2)
    c.idn = make_leaf(d, c.ca, c.ca_key, "idn", "DNS:xn--bcher-kva.test")
    yield c
    shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ the fake remote server
class FakeRemote:
    """Listens as the receiving server of remote.test: answers our outbound stream with
    STARTTLS (requiring and verifying our client certificate), SASL EXTERNAL, then reads
    stanzas. What happens goes to self.events: ('header', attrs), ('auth', mechanism,
    authzid), ('peer_cert', subjectAltName), ('stanza', Element), ('error', text)."""

    def __init__(self, certs):
        self.certs = certs
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.events = queue.Queue()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self._session(conn)
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.events.put(("error", repr(e)))
        finally:
            conn.close()

    def _elements(self, conn, parser):
        while True:
            while parser.events:
                yield parser.events.popleft()
            data = conn.recv(65536)
            if not data:
                return
            parser.feed(data)

    def _header(self, stream_id):
        return ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                "xmlns:stream='http://etherx.jabber.org/streams' from='remote.test' "
                "to='localhost' id='%s' version='1.0'>" % stream_id).encode()

    def _session(self, conn):
        conn.settimeout(15)
        parser = StreamParser()
        ev = self._elements(conn, parser)
        kind, tag, attrs = next(ev)
        self.events.put(("header", attrs))
        conn.sendall(self._header("s1") + b"<stream:features><starttls xmlns='" +
                     NS_TLS.encode() + b"'><required/></starttls></stream:features>")
        el = next(ev)[1]
        assert el.tag == q(NS_TLS, "starttls"), dump(el)
        conn.sendall(b"<proceed xmlns='" + NS_TLS.encode() + b"'/>")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*map(str, self.certs.remote))
        ctx.load_verify_locations(str(self.certs.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
        conn = ctx.wrap_socket(conn, server_side=True)
        self.events.put(("peer_cert", conn.getpeercert().get("subjectAltName")))
        parser = StreamParser()
        ev = self._elements(conn, parser)
        kind, tag, attrs = next(ev)
        self.events.put(("header", attrs))
        conn.sendall(self._header("s2") + b"<stream:features><mechanisms xmlns='" +
                     NS_SASL.encode() + b"'><mechanism>EXTERNAL</mechanism></mechanisms>"
                     b"</stream:features>")
        el = next(ev)[1]
        authzid = base64.b64decode(el.text or "").decode() if (el.text or "=") != "=" else ""
        self.events.put(("auth", el.get("mechanism"), authzid))
        conn.sendall(b"<success xmlns='" + NS_SASL.encode() + b"'/>")
        parser = StreamParser()
        ev = self._elements(conn, parser)
        kind, tag, attrs = next(ev)
        self.events.put(("header", attrs))
        conn.sendall(self._header("s3") + b"<stream:features/>")
        for e in ev:
            if e[0] == "element":
                self.events.put(("stanza", e[1]))
            elif e[0] == "end":
                conn.sendall(b"</stream:stream>")
                return

    def next(self, timeout=15):
        ev = self.events.get(timeout=timeout)
        assert ev[0] != "error", "the fake remote server failed: %s" % (ev[1],)
        return ev

    def close(self):
        self.stop = True
        self.sock.close()


# ------------------------------------------------------------------ the frontend under test
@pytest.fixture(scope="module")
def remote(certs):
    r = FakeRemote(certs)
    yield r
    r.close()


@pytest.fixture(scope="module")
def s2s_fe(stack, certs, remote):
    """A frontend with server-to-server on, its certificate from the test CA."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    s2s_port, s2s_tls_port, dead_port = free_port(), free_port(), free_port()
    # slow.test: a server that takes the TCP connection (the kernel's backlog) and never
    # says a word, so stanzas for it wait until s2s_connect_timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    stack._extra += 1
    fe = Frontend(stack, "s2s%d" % stack._extra, {
        "tls_cert": str(certs.local[0]), "tls_key": str(certs.local[1]),
        "s2s_listen": "127.0.0.1:%d" % s2s_port,
        "s2s_tls_listen": "127.0.0.1:%d" % s2s_tls_port,
        "s2s_ca_file": str(certs.ca),
        "s2s_static_hosts": "remote.test=127.0.0.1:%d,dead.test=127.0.0.1:%d,"
                            "slow.test=127.0.0.1:%d"
                            % (remote.port, dead_port, silent.getsockname()[1]),
        "s2s_connect_timeout": "5",
        "max_stanza_size": "65536",
    })
    fe.s2s_port, fe.s2s_tls_port = s2s_port, s2s_tls_port
    fe.silent = silent
    try:
        wait_probe_login(fe, stack.probe, cafile=str(certs.ca))
        wait_port(s2s_port, READY_TIMEOUT, fe.proc, fe.log)
    except Exception:
        fe.stop()
        raise
    yield fe
    silent.close()
    problems = fe.stop()
    assert not problems, "\n".join(problems)


class Peer(XMPPClient):
    """The initiating side of an inbound s2s stream: jabber:server, 'from' = origin, the
    certificate (cert, key) presented as client certificate after STARTTLS."""

    def __init__(self, port, origin="remote.test", to="localhost", cert=None, cafile=None):
        super().__init__(port, domain=to, cafile=cafile)
        self.origin = origin
        self.cert = cert

    def stream_header(self, to=None):
        to = self.domain if to is None else to
        # origin None: a header without 'from' (RFC 6120 4.7.1 allows it)
        origin = "" if self.origin is None else " from=%s" % quoteattr(self.origin)
        return ("<?xml version='1.0'?><stream:stream to=%s%s version='1.0' "
                "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
                % (quoteattr(to), origin))

    def ssl_context(self):
        ctx = super().ssl_context()
        if self.cert:
            ctx.load_cert_chain(*map(str, self.cert))
        return ctx

    def external(self, authzid=None):
        """<auth mechanism='EXTERNAL'/>; returns 'success' (the stream restarted) or the
        failure condition."""
        text = "=" if authzid is None else base64.b64encode(authzid.encode()).decode()
        self.send("<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>" % (NS_SASL, text))
        el = self.recv()
        if el.tag == q(NS_SASL, "success"):
            self._restart()
            return "success"
        assert el.tag == q(NS_SASL, "failure"), dump(el)
        return self.failure_condition(el)


def peer(fe, certs, cert="remote", **kw):
    return Peer(fe.s2s_port, cert=getattr(certs, cert) if cert else None, cafile=str(certs.ca),
                **kw)


def authed_peer(fe, certs, **kw):
    p = peer(fe, certs, **kw)
    p.open_stream()
    p.starttls()
    assert p.external() == "success"
    return p


# ------------------------------------------------------------------ inbound
def test_header_to_a_domain_we_do_not_host(s2s_fe, certs):
    p = peer(s2s_fe, certs, to="elsewhere.test")
    try:
        p.send(p.stream_header())
        p.expect_stream_error("host-unknown")
    finally:
        p.close()


def test_client_namespace_on_the_server_port(s2s_fe, certs):
    p = peer(s2s_fe, certs)
    try:
        p.send(p.stream_header().replace("xmlns='jabber:server'", "xmlns='jabber:client'"))
        p.expect_stream_error("invalid-namespace")
    finally:
        p.close()


def test_stanza_before_authentication(s2s_fe, certs):
    p = peer(s2s_fe, certs)
    try:
        features = p.open_stream()
        assert p.header.get("xmlns") is None or True  # attrs carry no xmlns in expat mode
        tls = features.find(q(NS_TLS, "starttls"))
        assert tls is not None and tls.find(q(NS_TLS, "required")) is not None, dump(features)
        assert p.mechanisms() == [], "SASL offered before TLS: %s" % dump(features)
        p.send("<message xmlns='jabber:server' from='a@remote.test' to='b@localhost'>"
               "<body>early</body></message>")
        p.expect_stream_error("not-authorized")
    finally:
        p.close()


def test_external_with_a_certificate_for_the_domain(s2s_fe, certs):
    p = peer(s2s_fe, certs)
    try:
        p.open_stream()
        features = p.starttls()
        assert p.mechanisms(features) == ["EXTERNAL"], dump(features)
        assert p.external("remote.test") == "success"
        assert p.header.get("from") == "localhost" and p.header.get("to") == "remote.test"
        assert p.mechanisms() == [] and p.features.find(q(NS_TLS, "starttls")) is None
        # A valid stanza is taken: no stream error, the stream stays open.
        p.send("<message from='someone@remote.test/res' to='nobody-%s@localhost' type='chat'>"
               "<body>hello</body></message>" % uuid.uuid4().hex[:8])
        p.expect_nothing(lambda e: True, 1.0)
        p.end_stream()
    finally:
        p.close()


def test_external_without_authzid_and_on_direct_tls(s2s_fe, certs):
    """XEP-0368: TLS from the first byte on s2s_tls_listen; EXTERNAL with '=' (no authzid)."""
    p = Peer(s2s_fe.s2s_tls_port, cert=certs.remote, cafile=str(certs.ca))
    try:
        p.sock = p.ssl_context().wrap_socket(p.sock, server_hostname="localhost")
        features = p.open_stream()
        assert features.find(q(NS_TLS, "starttls")) is None, dump(features)
        assert p.mechanisms(features) == ["EXTERNAL"], dump(features)
        assert p.external() == "success"
    finally:
        p.close()


def test_external_by_xmppaddr(s2s_fe, certs):
    p = peer(s2s_fe, certs, cert="xmppaddr", origin="xmpp.test")
    try:
        p.open_stream()
        assert p.mechanisms(p.starttls()) == ["EXTERNAL"]
        assert p.external("xmpp.test") == "success"
    finally:
        p.close()


def test_external_for_an_internationalised_domain(s2s_fe, certs):
    """RFC 6125 6.4.2: the stream names bücher.test (U-labels, as JIDs carry it), its
    certificate the A-label form xn--bcher-kva.test: they are the same domain."""
    p = peer(s2s_fe, certs, cert="idn", origin="b\u00fccher.test")
    try:
        p.open_stream()
        assert p.mechanisms(p.starttls()) == ["EXTERNAL"], dump(p.features)
        assert p.external("b\u00fccher.test") == "success"
        p.send("<message from='a@b\u00fccher.test' to='nobody@localhost'><body>x</body>"
               "</message>")
        p.expect_nothing(lambda e: True, 1.0)
    finally:
        p.close()


def test_external_with_a_certificate_for_another_domain(s2s_fe, certs):
    p = peer(s2s_fe, certs, cert="other")
    try:
        p.open_stream()
        features = p.starttls()
        assert "EXTERNAL" not in p.mechanisms(features), dump(features)
        assert p.external("remote.test") == "invalid-mechanism"
        # Nothing is accepted from it.
        p.send("<message from='a@remote.test' to='b@localhost'><body>x</body></message>")
        p.expect_stream_error("not-authorized")
    finally:
        p.close()


def test_stream_from_one_of_our_own_domains(s2s_fe, certs):
    """A peer never authenticates as a domain we host: with a certificate that names it (our
    own here; in the wild a wildcard or web server certificate for the domain) it could
    send stanzas from our users and services. The header is refused at once."""
    for origin in ("localhost", "conference.localhost"):
        p = peer(s2s_fe, certs, cert="local", origin=origin)
        try:
            p.send(p.stream_header())
            p.expect_stream_error("invalid-from")
        finally:
            p.close()


def test_external_without_a_certificate(s2s_fe, certs):
    p = peer(s2s_fe, certs, cert=None)
    try:
        p.open_stream()
        assert p.mechanisms(p.starttls()) == []
        assert p.external() == "invalid-mechanism"
    finally:
        p.close()


def test_external_with_another_authzid(s2s_fe, certs):
    p = peer(s2s_fe, certs)
    try:
        p.open_stream()
        p.starttls()
        assert p.external("other.test") == "invalid-authzid"
    finally:
        p.close()


def test_spoofed_from(s2s_fe, certs):
    p = authed_peer(s2s_fe, certs)
    try:
        p.send("<message from='admin@evil.test' to='b@localhost'><body>x</body></message>")
        p.expect_stream_error("invalid-from")
    finally:
        p.close()


def test_to_a_domain_we_do_not_host(s2s_fe, certs):
    p = authed_peer(s2s_fe, certs)
    try:
        p.send("<message from='a@remote.test' to='b@elsewhere.test'><body>x</body></message>")
        p.expect_stream_error("host-unknown")
    finally:
        p.close()


def test_missing_addresses(s2s_fe, certs):
    p = authed_peer(s2s_fe, certs)
    try:
        p.send("<message to='b@localhost'><body>x</body></message>")
        p.expect_stream_error("improper-addressing")
    finally:
        p.close()


def test_oversized_stanza(s2s_fe, certs):
    p = authed_peer(s2s_fe, certs)
    try:
        body = "x" * 70000  # the frontend's max_stanza_size is 65536
        p.send_tolerant("<message from='a@remote.test' to='b@localhost'><body>%s</body>"
                        "</message>" % body)
        p.expect_stream_error("policy-violation")
    finally:
        p.close()


def test_inbound_message_reaches_a_local_user(s2s_fe, certs, new_user, login):
    user = new_user("s2sin")
    c = login(user)
    p = authed_peer(s2s_fe, certs)
    try:
        token = uuid.uuid4().hex
        p.send("<message from='friend@remote.test/pc' to=%s type='chat' id='m1'>"
               "<body>%s</body></message>" % (quoteattr(user.jid), token))
        m = c.wait_message(token)
        assert m.get("from") == "friend@remote.test/pc", dump(m)
    finally:
        p.close()


# ------------------------------------------------------------------ outbound
def test_outbound_message_over_starttls_and_external(s2s_fe, certs, remote, new_user, login):
    user = new_user("s2sout")
    c = login(user)
    token = uuid.uuid4().hex
    c.message("friend@remote.test", token)
    # The stream may have come up before (an error an earlier test's stanza caused goes
    # back to remote.test): its negotiation is in the queue ahead of the stanzas.
    seen = []
    while True:
        ev = remote.next()
        if ev[0] == "stanza" and ev[1].findtext(q(NS_SERVER, "body")) == token:
            m = ev[1]
            break
        seen.append(ev)
    headers = [ev[1] for ev in seen if ev[0] == "header"]
    assert headers and all(h.get("from") == "localhost" and h.get("to") == "remote.test"
                           for h in headers), headers
    # STARTTLS with our certificate presented (the fake server requires and verifies it),
    # then EXTERNAL with our domain as authorization identity, then the restart.
    assert [ev[0] for ev in seen[:5]] == ["header", "peer_cert", "header", "auth", "header"], seen
    assert ("DNS", "localhost") in seen[1][1]
    assert seen[3] == ("auth", "EXTERNAL", "localhost")
    assert m.tag == q(NS_SERVER, "message"), dump(m)
    assert m.get("to") == "friend@remote.test" and m.get("from", "").startswith(user.jid + "/")


def test_outbound_to_an_unreachable_server_is_bounced(s2s_fe, new_user, login):
    user = new_user("s2sdead")
    c = login(user)
    c.message("friend@dead.test", "hello", id="dead1")
    err = c.wait_for(lambda e: e.get("id") == "dead1" and e.get("type") == "error",
                     timeout=10, what="the bounce")
    e = err.find(q("jabber:client", "error"))
    assert "remote-server-not-found" in child_conditions(e, NS_STANZAS), dump(err)
    # Our own bounce, not the router's: it says what failed.
    assert "connect" in (e.findtext(q(NS_STANZAS, "text")) or ""), dump(err)


def test_stanzas_waiting_for_a_slow_server_are_bounded_and_all_bounced(s2s_fe, new_user,
                                                                       login):
    """While the connection to a domain comes up, what waits for it is bounded in bytes
    (max_output_buffer: the queue is written in one pass once it is up): 40 messages of
    60 KB to a server that never answers; those past the bound come back at once, the rest
    when s2s_connect_timeout passes; every one comes back to its sender, none is lost."""
    user = new_user("s2sslow")
    c = login(user)
    body = "z" * 60000
    ids = ["slow%d" % i for i in range(40)]
    for mid in ids:
        c.message("friend@slow.test", body, id=mid)
    texts = {}
    while len(texts) < len(ids):
        err = c.wait_for(lambda e: e.get("type") == "error" and e.get("id") in ids
                         and e.get("id") not in texts, timeout=30, what="a bounce")
        e = err.find(q("jabber:client", "error"))
        assert "remote-server-timeout" in child_conditions(e, NS_STANZAS), dump(err)
        texts[err.get("id")] = e.findtext(q(NS_STANZAS, "text")) or ""
    full = [i for i in ids if "waiting" in texts[i]]
    late = [i for i in ids if "s2s_connect_timeout" in texts[i]]
    # 40 x 60 KB is more than max_output_buffer (1 MiB): the queue was full at some point
    # (a queue that timed out frees the pair, so a later message may start a new one).
    assert full and late and len(full) + len(late) == len(ids), texts


# ------------------------------------------------------------------ limits of a second frontend
@pytest.fixture(scope="module")
def tight_fe(stack, certs):
    """A frontend with s2s_idle_timeout 1 s and room for one inbound server connection."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    s2s_port = free_port()
    stack._extra += 1
    fe = Frontend(stack, "s2stight%d" % stack._extra, {
        "tls_cert": str(certs.local[0]), "tls_key": str(certs.local[1]),
        "s2s_listen": "127.0.0.1:%d" % s2s_port, "s2s_ca_file": str(certs.ca),
        "s2s_idle_timeout": "1", "s2s_max_connections": "1",
    })
    fe.s2s_port = s2s_port
    try:
        # The listeners open before the router link: once the probe logs in, s2s_listen
        # is there (a probe connection to it would hold the one place for a moment).
        wait_probe_login(fe, stack.probe, cafile=str(certs.ca))
    except Exception:
        fe.stop()
        raise
    yield fe
    problems = fe.stop()
    assert not problems, "\n".join(problems)


def test_idle_connection_closed_and_inbound_limit(tight_fe, certs):
    first = authed_peer(tight_fe, certs)
    try:
        # s2s_max_connections = 1: a second server is refused at accept, while the first
        # connection is open.
        second = socket.create_connection(("127.0.0.1", tight_fe.s2s_port), timeout=5)
        try:
            assert second.recv(100) == b""
        except ConnectionResetError:
            pass
        finally:
            second.close()
        # Nothing sent: after s2s_idle_timeout the frontend ends the stream and closes.
        with pytest.raises(StreamClosed) as closed:
            first.recv(timeout=10)
        assert not closed.value.eof, "closed without </stream:stream>"
        first.assert_closed()
    finally:
        first.close()
    # Once it is gone, a new server connection is taken again.
    p = authed_peer(tight_fe, certs)
    p.close()


def test_dialback_refused_while_secure_auth(s2s_fe, certs):
    """s2s_secure_auth (the default): no dialback offered, a <db:result/> is not taken."""
    p = peer(s2s_fe, certs, cert=None)
    try:
        p.open_stream()
        features = p.starttls()
        assert features.find(q(NS_DB_FEATURE, "dialback")) is None, dump(features)
        p.send("<db:result xmlns:db='%s' from='remote.test' to='localhost'>%s</db:result>"
               % (NS_DB, "0" * 64))
        p.expect_stream_error("not-authorized")
    finally:
        p.close()


# ------------------------------------------------------------------ Server Dialback
DIALBACK_SECRET = "s2s-test-" + uuid.uuid4().hex


def dialback_key(secret, receiving, originating, stream_id):
    """XEP-0185: hex(HMAC-SHA256(hex(SHA256(secret)), 'receiving originating id'))."""
    k = hashlib.sha256(secret.encode()).hexdigest().encode()
    msg = ("%s %s %s" % (receiving, originating, stream_id)).encode()
    return hmac.new(k, msg, hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def dialback_fe(stack, certs):
    """A frontend with s2s_secure_auth off and a known s2s_dialback_secret."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    s2s_port = free_port()
    stack._extra += 1
    fe = Frontend(stack, "s2sdb%d" % stack._extra, {
        "tls_cert": str(certs.local[0]), "tls_key": str(certs.local[1]),
        "s2s_listen": "127.0.0.1:%d" % s2s_port, "s2s_ca_file": str(certs.ca),
        "s2s_secure_auth": "false", "s2s_dialback_secret": DIALBACK_SECRET,
        # remote.test's authoritative server: a port nobody listens on
        "s2s_static_hosts": "remote.test=127.0.0.1:%d" % free_port(),
    })
    fe.s2s_port = s2s_port
    try:
        wait_probe_login(fe, stack.probe, cafile=str(certs.ca))
    except Exception:
        fe.stop()
        raise
    yield fe
    problems = fe.stop()
    assert not problems, "\n".join(problems)


def test_dialback_verify_answered_as_authoritative_server(dialback_fe, certs):
    """XEP-0220 2.3: another server asks whether a key is one we made for our stream to
    it; the answer comes from the secret alone (any of our frontends can give it)."""
    p = peer(dialback_fe, certs, cert=None)
    try:
        p.open_stream()
        features = p.starttls()
        assert features.find(q(NS_DB_FEATURE, "dialback")) is not None, dump(features)
        assert p.mechanisms(features) == []  # no certificate: no EXTERNAL
        good = dialback_key(DIALBACK_SECRET, "remote.test", "localhost", "stream-1")
        for key, want in ((good, "valid"), (good[::-1], "invalid"),
                          (dialback_key(DIALBACK_SECRET, "other.test", "localhost",
                                        "stream-1"), "invalid")):
            p.send("<db:verify xmlns:db='%s' from='remote.test' to='localhost' id='stream-1'>"
                   "%s</db:verify>" % (NS_DB, key))
            el = p.recv()
            assert el.tag == q(NS_DB, "verify"), dump(el)
            assert (el.get("from"), el.get("to"), el.get("id"), el.get("type")) == \
                ("localhost", "remote.test", "stream-1", want), dump(el)
        # Verifying keys authenticates nothing: stanzas are still refused.
        p.send("<message from='a@remote.test' to='b@localhost'><body>x</body></message>")
        p.expect_stream_error("not-authorized")
    finally:
        p.close()


def test_dialback_key_not_verified(dialback_fe, certs):
    """A <db:result/> whose authoritative server cannot be reached (remote.test is pinned
    to a port nobody listens on) gets type='invalid' and the stream ends."""
    p = peer(dialback_fe, certs, cert=None)
    try:
        p.open_stream()
        p.starttls()
        p.send("<db:result xmlns:db='%s' from='remote.test' to='localhost'>%s</db:result>"
               % (NS_DB, "0" * 64))
        el = p.recv(timeout=15)
        assert el.tag == q(NS_DB, "result") and el.get("type") == "invalid", dump(el)
        assert (el.get("from"), el.get("to")) == ("localhost", "remote.test"), dump(el)
        p.assert_closed()
    finally:
        p.close()


def test_dialback_for_one_of_our_own_domains(dialback_fe, certs):
    """A <db:result/> claiming one of our domains (a header without 'from') is refused at
    once: never an outbound connection to ourselves to verify it."""
    p = peer(dialback_fe, certs, cert=None, origin=None)
    try:
        p.open_stream()
        p.starttls()
        p.send("<db:result xmlns:db='%s' from='conference.localhost' to='localhost'>%s"
               "</db:result>" % (NS_DB, "0" * 64))
        p.expect_stream_error("invalid-from")
    finally:
        p.close()


@pytest.fixture(scope="module")
def plain_dialback_fe(stack, certs):
    """Dialback without TLS (s2s_require_encryption and s2s_secure_auth off)."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    s2s_port = free_port()
    stack._extra += 1
    fe = Frontend(stack, "s2sdbplain%d" % stack._extra, {
        "tls_cert": str(certs.local[0]), "tls_key": str(certs.local[1]),
        "s2s_listen": "127.0.0.1:%d" % s2s_port, "s2s_ca_file": str(certs.ca),
        "s2s_secure_auth": "false", "s2s_require_encryption": "false",
        "max_connections_per_ip": "0", "connection_rate_per_ip": "0",
    })
    fe.s2s_port = s2s_port
    try:
        wait_probe_login(fe, stack.probe, cafile=str(certs.ca))
    except Exception:
        fe.stop()
        raise
    yield fe
    problems = fe.stop()
    assert not problems, "\n".join(problems)


def _dialback_with_a_long_key(port, origin):
    """A <db:result/> from `origin` whose key is longer than any we verify: answered
    invalid, the stream ends."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(("<?xml version='1.0'?><stream:stream to='localhost' from='%s' "
                   "version='1.0' xmlns='jabber:server' xmlns:db='%s' "
                   "xmlns:stream='http://etherx.jabber.org/streams'>"
                   "<db:result from='%s' to='localhost'>%s</db:result>"
                   % (origin, NS_DB, origin, "a" * 100)).encode())
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
        assert b"type='invalid'" in got, got
    finally:
        s.close()


def test_dialback_with_a_long_key_leaves_nothing_behind(plain_dialback_fe):
    """An unauthenticated peer naming a new domain with every <db:result/> (its key too
    long to ask about) must not make the frontend keep anything per domain: its memory
    stays flat however many domains are named."""
    from test_abuse import SANITIZED, VALGRIND, rss_kb
    if SANITIZED or VALGRIND:
        pytest.skip("VmRSS says nothing under AddressSanitizer or valgrind")
    pid = plain_dialback_fe.proc.pid
    run = uuid.uuid4().hex[:8]
    for i in range(300):  # the allocator's arenas settle
        _dialback_with_a_long_key(plain_dialback_fe.s2s_port, "w%d-%s.invalid" % (i, run))
    base = rss_kb(pid)
    for i in range(3000):
        _dialback_with_a_long_key(plain_dialback_fe.s2s_port, "d%d-%s.invalid" % (i, run))
    growth = rss_kb(pid) - base
    # Kept per domain, 3000 domains would be ~20 MiB.
    assert growth < 4096, "VmRSS grew by %d KiB over 3000 dialback attempts" % growth


@pytest.fixture(scope="module")
def slow_target():
    """slow.test's server: a listener whose accept queue is full (backlog 0, filled by
    connections nobody accepts), so that a connect to it hangs (its SYNs are dropped) until
    the queue is emptied. Yields (socket, the local ports of the fillers)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(ls.getsockname())
        fillers.append(f)
    yield ls, {f.getsockname()[1] for f in fillers}
    for f in fillers:
        f.close()
    ls.close()


@pytest.fixture(scope="module")
def slow_fe(stack, certs, slow_target):
    """Dialback without TLS; slow.test's authoritative server is slow_target, and a
    connection gets s2s_connect_timeout 1 s."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    s2s_port = free_port()
    stack._extra += 1
    fe = Frontend(stack, "s2sslow%d" % stack._extra, {
        "tls_cert": str(certs.local[0]), "tls_key": str(certs.local[1]),
        "s2s_listen": "127.0.0.1:%d" % s2s_port, "s2s_ca_file": str(certs.ca),
        "s2s_secure_auth": "false", "s2s_require_encryption": "false",
        "s2s_static_hosts": "slow.test=127.0.0.1:%d" % slow_target[0].getsockname()[1],
        "s2s_connect_timeout": "1",
    })
    fe.s2s_port = s2s_port
    try:
        wait_probe_login(fe, stack.probe, cafile=str(certs.ca))
    except Exception:
        fe.stop()
        raise
    yield fe
    problems = fe.stop()
    assert not problems, "\n".join(problems)


def test_connection_given_up_while_connecting_is_closed(slow_fe, slow_target):
    """An outbound connection still connecting when s2s_connect_timeout passes is given up:
    its socket is closed then. Kept, it would connect later and stay open for good,
    nobody reading or writing it."""
    ls, fillers = slow_target
    s = socket.create_connection(("127.0.0.1", slow_fe.s2s_port), timeout=10)
    try:
        # The key goes to slow.test's authoritative server: the connect to it hangs.
        s.sendall(("<?xml version='1.0'?><stream:stream to='localhost' from='slow.test' "
                   "version='1.0' xmlns='jabber:server' xmlns:db='%s' "
                   "xmlns:stream='http://etherx.jabber.org/streams'>"
                   "<db:result from='slow.test' to='localhost'>%s</db:result>"
                   % (NS_DB, "0" * 64)).encode())
        got = b""
        while b"type='invalid'" not in got:
            data = s.recv(65536)
            assert data, "closed without an answer: %r" % got
            got += data
    finally:
        s.close()
    # Given up. Now the queue empties: a connect still under way would complete with the
    # next retransmitted SYN (about 3 s after the first).
    ls.settimeout(10)
    while True:
        try:
            conn, addr = ls.accept()
        except socket.timeout:
            return  # the frontend's connect was abandoned: nothing came
        if addr[1] in fillers:
            conn.close()
            continue
        try:
            conn.settimeout(10)
            try:
                data = conn.recv(100)
            except socket.timeout:
                pytest.fail("a connection given up at s2s_connect_timeout connected later "
                            "and was left open")
            assert data == b"", "the frontend wrote %r on a connection it gave up" % data
        finally:
            conn.close()
        return


class DialbackRemote:
    """The receiving server of any domain, without TLS: takes our dialback key as valid
    (type='valid'), says every key it is asked about is not its own (type='invalid'), and
    keeps each stream open. self.accepted counts the connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        self.received = []  # every top-level element our streams carried
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        parser = StreamParser()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                try:
                    parser.feed(data)
                    broken = False
                except Exception:  # noqa: BLE001 - not XML: what parsed before still counts
                    broken = True
                while parser.events:
                    ev = parser.events.popleft()
                    if ev[0] == "element":
                        self.received.append(ev[1])
                    if ev[0] == "header":
                        conn.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
                                      " xmlns:stream='http://etherx.jabber.org/streams'"
                                      " xmlns:db='%s' id='%s' version='1.0'><stream:features/>"
                                      % (NS_DB, uuid.uuid4().hex)).encode())
                    elif ev[0] == "element" and ev[1].tag == q(NS_DB, "result"):
                        conn.sendall(("<db:result from=%s to=%s type='valid'/>"
                                      % (quoteattr(ev[1].get("to")),
                                         quoteattr(ev[1].get("from")))).encode())
                    elif ev[0] == "element" and ev[1].tag == q(NS_DB, "verify"):
                        conn.sendall(("<db:verify from=%s to=%s id=%s type='invalid'/>"
                                      % (quoteattr(ev[1].get("to")),
                                         quoteattr(ev[1].get("from")),
                                         quoteattr(ev[1].get("id")))).encode())
                if broken:
                    return
        except Exception:  # noqa: BLE001 - a stream that is not XML ends here
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture(scope="module")
def dialback_remote():
    r = DialbackRemote()
    yield r
    r.close()


@pytest.fixture(scope="module")
def capped_fe(stack, certs, dialback_remote):
    """Dialback without TLS, s2s_max_connections 1; a.test and b.test are served by
    dialback_remote."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    s2s_port = free_port()
    stack._extra += 1
    fe = Frontend(stack, "s2scap%d" % stack._extra, {
        "tls_cert": str(certs.local[0]), "tls_key": str(certs.local[1]),
        "s2s_listen": "127.0.0.1:%d" % s2s_port, "s2s_ca_file": str(certs.ca),
        "s2s_secure_auth": "false", "s2s_require_encryption": "false",
        "s2s_static_hosts": "a.test=127.0.0.1:%d,b.test=127.0.0.1:%d"
                            % (dialback_remote.port, dialback_remote.port),
        "s2s_max_connections": "1",
    })
    fe.s2s_port = s2s_port
    try:
        wait_probe_login(fe, stack.probe, cafile=str(certs.ca))
    except Exception:
        fe.stop()
        raise
    yield fe
    problems = fe.stop()
    assert not problems, "\n".join(problems)


def _dialback_answer(port, origin, key="0" * 64):
    """A <db:result/> from `origin`; returns what the frontend sent until it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(("<?xml version='1.0'?><stream:stream to='localhost' from='%s' "
                   "version='1.0' xmlns='jabber:server' xmlns:db='%s' "
                   "xmlns:stream='http://etherx.jabber.org/streams'>"
                   "<db:result from='%s' to='localhost'>%s</db:result>"
                   % (origin, NS_DB, origin, escape(key))).encode())
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                return got
            got += data
    finally:
        s.close()


def test_outbound_connections_are_bounded(capped_fe, dialback_remote):
    """s2s_max_connections bounds the outbound connections too: each <db:result/> naming a
    new domain (one an unauthenticated peer chooses) would otherwise leave one more
    connection to that domain's server open, kept alive by it for as long as it likes."""
    # a.test: its authoritative server is asked (our connection to it stays up)...
    assert b"type='invalid'" in _dialback_answer(capped_fe.s2s_port, "a.test")
    assert dialback_remote.accepted == 1
    # ...b.test needs a second connection: over s2s_max_connections, the key is not
    # verified and no connection is opened.
    assert b"type='invalid'" in _dialback_answer(capped_fe.s2s_port, "b.test")
    assert dialback_remote.accepted == 1, "a second outbound connection was opened"


def test_dialback_key_is_escaped_when_asked_about(capped_fe, dialback_remote):
    """The key of a peer's <db:result/> goes on our stream to the authoritative server as
    text: markup in it must not become elements there (a stanza from one of our users)."""
    key = "</db:verify><message from='x@localhost' to='y@a.test'/>"
    assert len(key) <= 64
    assert b"type='invalid'" in _dialback_answer(capped_fe.s2s_port, "a.test", key)
    verifies = [e for e in dialback_remote.received if e.tag == q(NS_DB, "verify")]
    assert any(e.text == key for e in verifies), [dump(e) for e in verifies]
    assert not [e for e in dialback_remote.received if e.tag.endswith("}message")], \
        [dump(e) for e in dialback_remote.received]


class SniRemote:
    """A receiving server that offers STARTTLS, records the server name our ClientHello
    asks for (SNI), then ends the connection."""

    def __init__(self, certs):
        self.certs = certs
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.names = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                self._serve(conn)
            except Exception as e:  # noqa: BLE001 - reported to the test
                self.names.put(("error", repr(e)))
            finally:
                conn.close()

    def _serve(self, conn):
        conn.settimeout(10)
        parser = StreamParser()
        while not any(ev[0] == "header" for ev in parser.events):
            parser.feed(conn.recv(65536))
        conn.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                      "xmlns:stream='http://etherx.jabber.org/streams' id='s1' version='1.0'>"
                      "<stream:features><starttls xmlns='%s'><required/></starttls>"
                      "</stream:features>" % NS_TLS).encode())
        while not any(ev[0] == "element" for ev in parser.events):
            parser.feed(conn.recv(65536))
        conn.sendall(("<proceed xmlns='%s'/>" % NS_TLS).encode())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*map(str, self.certs.idn))

        def sni(sock, name, c):
            self.names.put(("sni", name))
        ctx.sni_callback = sni
        ctx.wrap_socket(conn, server_side=True).close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def sni_remote(certs):
    r = SniRemote(certs)
    yield r
    r.close()


@pytest.fixture(scope="module")
def idn_fe(stack, certs, sni_remote):
    """Dialback without TLS inbound; bücher.test's server is sni_remote."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    s2s_port = free_port()
    stack._extra += 1
    fe = Frontend(stack, "s2sidn%d" % stack._extra, {
        "tls_cert": str(certs.local[0]), "tls_key": str(certs.local[1]),
        "s2s_listen": "127.0.0.1:%d" % s2s_port, "s2s_ca_file": str(certs.ca),
        "s2s_secure_auth": "false", "s2s_require_encryption": "false",
        "s2s_static_hosts": "b\u00fccher.test=127.0.0.1:%d" % sni_remote.port,
    })
    fe.s2s_port = s2s_port
    try:
        wait_probe_login(fe, stack.probe, cafile=str(certs.ca))
    except Exception:
        fe.stop()
        raise
    yield fe
    problems = fe.stop()
    assert not problems, "\n".join(problems)


def test_outbound_sni_of_an_internationalised_domain(idn_fe, sni_remote):
    """RFC 6066 3: the server name we ask for is the A-label form of the remote domain."""
    _dialback_answer(idn_fe.s2s_port, "b\u00fccher.test")
    ev = sni_remote.names.get(timeout=15)
    assert ev == ("sni", "xn--bcher-kva.test"), ev

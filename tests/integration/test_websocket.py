"""XMPP over WebSocket (RFC 7395) on the frontend's ws_listen and wss_listen: the upgrade
handshake and its refusals (RFC 6455 4.2), framing (<open/>, <close/>, one element per
message), WebSocket-level errors with their close codes, host-meta (XEP-0156), and the same
stream as on TCP behind it (SASL, bind, stanzas with TCP clients, stream management across
frontends)."""
import json
import socket
import ssl
import struct
import time
import xml.etree.ElementTree as ET

import pytest

from test_im_helpers import befriend, online
from ws_client import (NS_FRAMING, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                       WSClient, connect, encode_frame, handshake_request, http_get,
                       read_response, FrameReader)
from xmpp_client import NS_SASL, NS_TLS, MESSAGE_TAG, dump, q

NS_SM = "urn:xmpp:sm:3"
NS_XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
WS_REL = "urn:xmpp:alt-connections:websocket"


@pytest.fixture
def ws(stack):
    """ws(tls=False, port=None, **kw) -> WSClient on the main frontend (closed at the end)."""
    fe = stack.frontend  # skips on a remote stack (no local frontend to reach directly)
    made = []

    def make(tls=False, port=None, **kw):
        c = WSClient(port or (fe.wss_port if tls else fe.ws_port), tls=tls,
                     cafile=stack.cafile, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def still_serving(login, new_user):
    """Another client logs in and gets an answer: one bad peer harmed no one else."""
    c = login(new_user("bystander"), priority=False)
    assert c.ping().get("type") == "result"


def close_code_after(sock, frames=None, timeout=5.0):
    """Reads frames until the server's close frame; returns its status code."""
    reader = frames or FrameReader(sock)
    while True:
        try:
            fin, op, payload = reader.frame(timeout)
        except EOFError:
            return None
        if op == OP_CLOSE:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def upgraded(stack, tls=False):
    """A socket that has done the upgrade (no XMPP yet) and its frame reader."""
    fe = stack.frontend
    sock = connect(fe.wss_port if tls else fe.ws_port, tls, stack.cafile)
    sock.sendall(handshake_request())
    status, _, body, rest = read_response(sock)
    assert status == 101, body
    return sock, FrameReader(sock, rest)


# ------------------------------------------------------------------ the stream over ws

def test_login_and_chat_with_a_tcp_client(ws, login, new_user, stack):
    ua, ub = new_user("wsa"), new_user("wsb")
    a = ws()
    features = a.open_stream()
    assert a.header.get("from") == stack.domain and a.header.get("version") == "1.0"
    # No STARTTLS on a WebSocket (RFC 7395 3.7); from loopback the connection counts as
    # protected (require_tls is on here), so every mechanism but the -PLUS ones.
    assert features.find(q(NS_TLS, "starttls")) is None
    mechs = a.mechanisms()
    assert "SCRAM-SHA-1" in mechs and "SCRAM-SHA-256" in mechs and "PLAIN" in mechs
    assert not [m for m in mechs if m.endswith("-PLUS")]
    assert a.auth(ua.localpart, ua.password, "SCRAM-SHA-1") == "success"
    a.bind("browser")
    b = online(login, ub, "pc")
    a.send("<presence/>")
    a.message(b.jid, "hello from the browser")
    got = b.im_wait_message("hello from the browser")
    assert got.get("from") == a.jid
    b.message(a.jid, "hello from the desktop")
    m = a.wait_message("hello from the desktop")
    assert m.get("from") == b.jid
    # Each message stands alone, stanzas in jabber:client (RFC 7395 3.3.3).
    text = [t for t in a.messages if "hello from the desktop" in t][0]
    assert ET.fromstring(text).tag == MESSAGE_TAG
    for t in a.messages:
        ET.fromstring(t)


def test_plain_is_offered_over_wss(ws, new_user):
    u = new_user("wss")
    c = ws(tls=True)
    c.open_stream()
    assert "PLAIN" in c.mechanisms()
    assert c.auth(u.localpart, u.password, "PLAIN") == "success"
    assert c.bind("r").startswith(u.localpart + "@")
    assert c.ping().get("type") == "result"


def non_loopback_address():
    """An address of this machine that is not loopback, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def test_plain_ws_from_elsewhere_gets_no_login_while_tls_is_required(extra_frontend, new_user,
                                                                     stack):
    """A plain WebSocket from another host, not through the load balancer, is not
    protected: with require_tls it is offered no mechanism (there is no STARTTLS to
    negotiate), and an <auth/> gets encryption-required."""
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no address but loopback")
    from conftest import free_port
    port = free_port()
    extra_frontend(ws_listen="%s:%d" % (addr, port))
    u = new_user("wse")
    c = WSClient(port, host=addr, cafile=stack.cafile)
    try:
        c.open_stream()
        assert c.mechanisms() == []
        assert c.auth(u.localpart, u.password, "SCRAM-SHA-256") == "encryption-required"
    finally:
        c.close()


def test_close_is_answered_and_ends_the_session(ws, login, new_user):
    ua, ub = new_user("wsc"), new_user("wsd")
    b = online(login, ub, "b")
    a = ws()
    a.login(ua.localpart, ua.password, resource="web")
    a.roster_get()
    a.send("<presence/>")
    befriend(a, b)
    a.send("<close xmlns='%s'/>" % NS_FRAMING)
    a.assert_closed()
    assert a.stream_ended, "no <close/> in answer: %s" % a.messages[-3:]
    assert a.close_code == 1000
    b.im_wait_presence(type_="unavailable", sender=a.jid)


def test_stream_error_is_followed_by_close(ws):
    c = ws()
    c.send("<open xmlns='%s' to='no.such.domain' version='1.0'/>" % NS_FRAMING)
    err = c.expect_stream_error("host-unknown")
    assert err is not None
    assert c.close_code == 1000
    # The error and the <close/> are messages of their own.
    assert any(t.lstrip().startswith("<close") for t in c.messages)


def test_stanza_before_open_is_refused(ws):
    c = ws()
    c.send("<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>")
    c.expect_stream_error("bad-format")


def test_message_with_an_unclosed_element_is_refused(ws, new_user):
    u = new_user("wsu")
    c = ws()
    c.login(u.localpart, u.password)
    c.send("<message to='%s'><body>half" % c.jid)
    c.expect_stream_error("not-well-formed")


def test_fragmented_message_is_reassembled(ws, new_user):
    u = new_user("wsf")
    c = ws()
    c.login(u.localpart, u.password)
    data = b"<iq type='get' id='frag1'><ping xmlns='urn:xmpp:ping'/></iq>"
    c.send_frame(OP_TEXT, data[:10], fin=False)
    c.send_frame(OP_PING, b"mid")  # control frames may come between fragments
    c.send_frame(OP_CONT, data[10:30], fin=False)
    c.send_frame(OP_CONT, data[30:], fin=True)
    res = c.wait_for(lambda e: e.get("id") == "frag1")
    assert res.get("type") == "result", dump(res)


# The frontend frees an idle connection's XML parser and wslay context after 1 s without
# traffic (stream.c, PARSER_IDLE_MS; its timer may add 0.25 s), and makes them again when
# bytes come.
IDLE = 1.6


def test_idle_connection_resumes_mid_message_and_mid_frame(ws, new_user):
    u = new_user("wsidle")
    c = ws()
    c.login(u.localpart, u.password)
    time.sleep(IDLE)
    assert c.ping().get("type") == "result"
    # A message in fragments with an idle time between them.
    data = b"<iq type='get' id='idle1'><ping xmlns='urn:xmpp:ping'/></iq>"
    c.send_frame(OP_TEXT, data[:10], fin=False)
    time.sleep(IDLE)
    c.send_frame(OP_CONT, data[10:], fin=True)
    res = c.wait_for(lambda e: e.get("id") == "idle1")
    assert res.get("type") == "result", dump(res)
    # A frame cut in two (within its header, then within its payload) by idle times.
    frame = encode_frame(OP_TEXT, b"<iq type='get' id='idle2'><ping xmlns='urn:xmpp:ping'/></iq>")
    c.sock.sendall(frame[:1])
    time.sleep(IDLE)
    c.sock.sendall(frame[1:20])
    time.sleep(IDLE)
    c.sock.sendall(frame[20:])
    res = c.wait_for(lambda e: e.get("id") == "idle2")
    assert res.get("type") == "result", dump(res)
    # A WebSocket ping after an idle time is answered; the stream then closes cleanly.
    time.sleep(IDLE)
    c.send_frame(OP_PING, b"still here")
    time.sleep(IDLE)
    c.end_stream()


def test_ping_is_answered_with_pong(stack):
    sock, frames = upgraded(stack)
    try:
        sock.sendall(encode_frame(OP_PING, b"are you there"))
        fin, op, payload = frames.frame(5)
        assert (op, payload) == (OP_PONG, b"are you there")
    finally:
        sock.close()


def test_resumption_on_the_other_frontend(ws, extra_frontend, login, new_user, stack):
    """Stream management works across transports and frontends: a WebSocket session cut
    off on one frontend is resumed over WebSocket on another, and the message sent
    meanwhile arrives."""
    ua, ub = new_user("wsr"), new_user("wss")
    fe2 = extra_frontend()
    a = ws()
    a.login(ua.localpart, ua.password, resource="tab")
    a.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    en = a.wait_for(lambda e: e.tag in (q(NS_SM, "enabled"), q(NS_SM, "failed")))
    assert en.tag == q(NS_SM, "enabled"), dump(en)
    a.send("<presence/>")
    b = online(login, ub, "b")
    b.message(a.jid, "before the cut")
    a.wait_message("before the cut")
    a.abort()
    time.sleep(0.3)
    b.message(a.jid, "while away")
    b.im_sync()
    a2 = ws(port=fe2.ws_port)
    a2.open_stream()
    assert a2.auth(ua.localpart, ua.password) == "success"
    a2.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, en.get("id")))
    r = a2.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")))
    assert r.tag == q(NS_SM, "resumed"), dump(r)
    a2.wait_message("while away")


# ------------------------------------------------------------------ WebSocket errors

@pytest.mark.parametrize("opcode, payload, mask, code", [
    (OP_TEXT, b"<open xmlns='%s' to='localhost' version='1.0'/>" % NS_FRAMING.encode(), False,
     1002),
    (OP_BINARY, b"<open/>", True, 1003),
    (OP_TEXT, b"<open xmlns='\xff\xfe' />", True, 1007),
], ids=["not masked (RFC 6455 5.1)", "binary (RFC 7395 3.2: text only)", "invalid UTF-8"])
def test_bad_frames_are_refused(stack, login, new_user, opcode, payload, mask, code):
    sock, frames = upgraded(stack)
    try:
        sock.sendall(encode_frame(opcode, payload, mask=mask))
        assert close_code_after(sock, frames) == code
    finally:
        sock.close()
    still_serving(login, new_user)


def test_oversized_message_before_login_is_refused(stack, login, new_user):
    """Before authentication a message may hold max_stanza_size_preauth bytes (16384 by
    default): a larger one ends the connection with 1009, fragmented or not."""
    sock, frames = upgraded(stack)
    try:
        big = b"<message>" + b"x" * 20000 + b"</message>"
        sock.sendall(encode_frame(OP_TEXT, big[:9000], fin=False))
        sock.sendall(encode_frame(OP_CONT, big[9000:], fin=True))
        assert close_code_after(sock, frames) == 1009
    finally:
        sock.close()
    still_serving(login, new_user)


def test_oversized_control_frame_after_a_flood_is_a_protocol_error(stack, login, new_user):
    """A ping claiming 200 bytes (control frames carry at most 125) behind enough pongs to
    pass max_bytes_per_second: the connection ends with 1002 and nothing of it is used
    after it is gone (the sanitizer build checks the throttling timer)."""
    sock = connect(stack.frontend.ws_port)
    try:
        bad = bytes([0x89, 0xFE, 0x00, 0xC8]) + b"\0\0\0\0" + b"x" * 200
        sock.sendall(handshake_request() + encode_frame(OP_PONG, b"p" * 120) * 3000 + bad)
        status, _, _, rest = read_response(sock)
        assert status == 101
        assert close_code_after(sock, FrameReader(sock, rest), timeout=10) in (1002, None)
    finally:
        sock.close()
    time.sleep(1.0)  # the throttling timer would have fired by now
    still_serving(login, new_user)


def test_many_tiny_fragments_are_refused(stack, login, new_user):
    """A message in more frames than any client needs (each costs memory apart from its
    bytes): closed with 1009 like an oversized message."""
    sock, frames = upgraded(stack)
    try:
        data = encode_frame(OP_TEXT, b"<", fin=False)
        data += b"".join(encode_frame(OP_CONT, b"a", fin=False) for _ in range(2000))
        try:
            sock.sendall(data)
        except OSError:
            pass
        assert close_code_after(sock, frames) == 1009
    finally:
        sock.close()
    still_serving(login, new_user)


def test_a_message_in_too_many_frames_is_not_used(ws, login, new_user):
    """The frame past the limit ends the message: it is refused whole (1009), even when
    that frame is the last one, and the recipient gets nothing."""
    ua, ub = new_user("wsg"), new_user("wsh")
    b = login(ub, resource="b")
    a = ws()
    a.login(ua.localpart, ua.password)
    data = ("<message xmlns='jabber:client' to='%s'><body>in 65 frames</body></message>"
            % b.jid).encode()
    parts = [data[:len(data) - 64]] + [data[len(data) - 64 + i:len(data) - 63 + i]
                                       for i in range(64)]
    assert len(parts) == 65 and b"".join(parts) == data
    a.send_frame(OP_TEXT, parts[0], fin=False)
    for i, part in enumerate(parts[1:]):
        a.send_frame(OP_CONT, part, fin=i == 63)
    a.assert_closed()
    assert a.close_code == 1009
    b.expect_nothing(lambda e: e.findtext("{jabber:client}body") == "in 65 frames", 1.0)


def test_close_frame_without_close_element_leaves_the_session_resumable(ws, new_user):
    """A browser tab closed or reloaded sends a WebSocket close frame (1001) without
    <close/>: the stream did not end, so, as for a lost TCP connection, the session waits
    to be resumed."""
    u = new_user("wsz")
    a = ws()
    a.login(u.localpart, u.password, resource="tab")
    a.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    en = a.wait_for(lambda e: e.tag in (q(NS_SM, "enabled"), q(NS_SM, "failed")))
    assert en.tag == q(NS_SM, "enabled"), dump(en)
    a.send_frame(OP_CLOSE, struct.pack("!H", 1001))
    a.assert_closed()
    a2 = ws()
    a2.open_stream()
    assert a2.auth(u.localpart, u.password) == "success"
    a2.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, en.get("id")))
    r = a2.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")))
    assert r.tag == q(NS_SM, "resumed"), dump(r)


# ------------------------------------------------------------------ the handshake

@pytest.mark.parametrize("kw, status, why", [
    ({"protocol": None}, 400, "no subprotocol"),
    ({"protocol": "chat, superchat"}, 400, "no xmpp among the subprotocols"),
    ({"version": "8"}, 426, "an old protocol version"),
    ({"key": "not-a-key"}, 400, "a key that is not 16 bytes of base64"),
    ({"key": None}, 400, "no key"),
    ({"path": "/elsewhere"}, 404, "another path"),
    ({"method": "POST"}, 405, "not a GET"),
])
def test_bad_handshakes_are_refused(stack, login, new_user, kw, status, why):
    sock = connect(stack.frontend.ws_port)
    try:
        sock.sendall(handshake_request(**kw))
        got, headers, body, _ = read_response(sock)
        assert got == status, "%s: %d %r" % (why, got, body)
        if status == 426:
            assert headers.get("sec-websocket-version") == "13"
        sock.settimeout(5)
        assert sock.recv(100) == b"", "the connection stays open after the refusal"
    finally:
        sock.close()
    still_serving(login, new_user)


def test_http_1_0_or_no_host_is_refused(stack):
    for request in (handshake_request().replace(b"HTTP/1.1", b"HTTP/1.0"),
                    handshake_request(host=None)):
        sock = connect(stack.frontend.ws_port)
        try:
            sock.sendall(request)
            assert read_response(sock)[0] == 400
        finally:
            sock.close()


def test_whitespace_around_header_values_is_allowed(stack):
    sock = connect(stack.frontend.ws_port)
    try:
        sock.sendall(handshake_request(version="13 ", protocol="  xmpp "))
        status, headers, _, _ = read_response(sock)
        assert status == 101 and headers.get("sec-websocket-protocol") == "xmpp"
    finally:
        sock.close()


def test_a_pipelined_request_does_not_spoil_the_first(stack):
    port = stack.frontend.ws_port
    sock = connect(port)
    try:
        one = b"GET /.well-known/host-meta.json HTTP/1.1\r\nHost: localhost\r\n\r\n"
        sock.sendall(one + one.replace(b"host-meta.json", b"elsewhere"))
        status, _, body, _ = read_response(sock)
        assert status == 200 and json.loads(body)["links"]
    finally:
        sock.close()


def test_plain_get_of_the_endpoint_asks_for_an_upgrade(stack):
    status, headers, body = http_get(stack.frontend.ws_port, "/xmpp-websocket")
    assert status == 426 and headers.get("upgrade", "").lower() == "websocket"


def test_oversized_request_head_is_refused(stack):
    sock = connect(stack.frontend.ws_port)
    try:
        sock.sendall(b"GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
                     + b"a" * 9000 + b"\r\n\r\n")
        status, _, _, _ = read_response(sock)
        assert status == 431
    finally:
        sock.close()


def test_origins_are_checked(extra_frontend, stack):
    fe = extra_frontend(ws_allowed_origins="https://chat.example.org, http://localhost:8080")
    for origin, want in (("https://evil.example.net", 403), ("http://localhost:8080", 101),
                         (None, 101)):
        sock = connect(fe.ws_port)
        try:
            sock.sendall(handshake_request(origin=origin))
            status, _, body, _ = read_response(sock)
            assert status == want, "%s: %d %r" % (origin, status, body)
        finally:
            sock.close()


def test_websocket_and_tcp_over_the_same_tls_certificate(ws, stack):
    """wss uses the frontend's certificate: the test CA verifies it for 'localhost'."""
    sock = connect(stack.frontend.wss_port, tls=True, cafile=stack.cafile)
    try:
        assert isinstance(sock, ssl.SSLSocket) and sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        sock.close()


# ------------------------------------------------------------------ host-meta (XEP-0156)

@pytest.mark.parametrize("tls", [False, True])
def test_host_meta_names_the_websocket_url(stack, tls):
    port = stack.frontend.wss_port if tls else stack.frontend.ws_port
    host = "localhost:%d" % port
    status, headers, body = http_get(port, "/.well-known/host-meta", tls, stack.cafile, host=host)
    assert status == 200
    assert headers.get("access-control-allow-origin") == "*"
    links = ET.fromstring(body).findall("{%s}Link" % NS_XRD)
    want = "%s://%s/xmpp-websocket" % ("wss" if tls else "ws", host)
    assert [(ln.get("rel"), ln.get("href")) for ln in links] == [(WS_REL, want)]
    status, headers, body = http_get(port, "/.well-known/host-meta.json", tls, stack.cafile,
                                     host=host)
    assert status == 200 and headers.get("content-type") == "application/json"
    assert json.loads(body)["links"] == [{"rel": WS_REL, "href": want}]


def test_host_meta_behind_a_tls_proxy_says_wss(stack):
    port = stack.frontend.ws_port
    status, _, body = http_get(port, "/.well-known/host-meta.json", host="chat.example.org",
                               extra={"X-Forwarded-Proto": "https"})
    assert status == 200
    assert json.loads(body)["links"][0]["href"] == "wss://chat.example.org/xmpp-websocket"


def test_host_meta_with_ws_url_configured(extra_frontend):
    fe = extra_frontend(ws_url="wss://xmpp.example.org/ws")
    status, _, body = http_get(fe.ws_port, "/.well-known/host-meta.json")
    assert json.loads(body)["links"][0]["href"] == "wss://xmpp.example.org/ws"


def test_bad_host_header_is_not_echoed(stack):
    status, _, body = http_get(stack.frontend.ws_port, "/.well-known/host-meta",
                               host="x'/><script>")
    assert status == 400


# ------------------------------------------------------------------ keepalive

def test_quiet_clients_are_pinged_and_dead_ones_closed(extra_frontend, new_user, stack):
    """ws_ping_interval=1: a client that sends nothing gets a ping; one that never answers
    is closed a period later, one that answers (WSClient does) stays."""
    fe = extra_frontend(ws_ping_interval="1")
    u = new_user("wsk")
    alive = WSClient(fe.ws_port, cafile=stack.cafile)
    alive.login(u.localpart, u.password)
    sock = connect(fe.ws_port)
    try:
        sock.sendall(handshake_request())
        status, _, _, rest = read_response(sock)
        assert status == 101
        frames = FrameReader(sock, rest)
        fin, op, payload = frames.frame(10)
        assert op == OP_PING
        # No pong: the next period ends the connection (EOF, or a close frame first).
        try:
            while True:
                fin, op, payload = frames.frame(10)
                assert op in (OP_PING, OP_CLOSE), op
        except EOFError:
            pass
        # The client that reads (and so answers each ping) is still served after several
        # periods.
        alive.expect_nothing(lambda e: True, 2.5)
        assert alive.ping(timeout=5).get("type") == "result"
    finally:
        sock.close()
        alive.close()

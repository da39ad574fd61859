"""XMPP over WebSocket (RFC 7395) for the integration tests, on raw sockets so that tests can
also send what a correct client never would (unmasked frames, invalid UTF-8, bad handshakes).

WSClient is an XMPPClient whose bytes travel in WebSocket text messages: its stream header is
<open/>, its end <close/>, and each message the server sends must parse as a standalone XML
document (RFC 7395 3.3.3), which _read checks before handing it to the stream parser (the
<open/> and <close/> turned into the stream header and end tag the parser expects), so all
the XMPPClient helpers (SASL, bind, im_*) work unchanged.

WSLibClient is the same XMPPClient on python3-websockets (Debian's 10.4, its asyncio client,
a private event loop run for each send and wait): a WebSocket implementation that is not
ours, for the tests through HAProxy (tests/stack/test_stack_websocket.py,
test_lb_websocket.py), which take a wss:// URL; url_get and host_meta_websocket_urls fetch
over HTTPS from such a URL's host and port.
"""
import asyncio
import base64
import http.client
import json
import os
import re
import socket
import ssl
import struct
import time
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import websockets

from xmpp_client import DEFAULT_TIMEOUT, TIMEOUT_SCALE, StreamClosed, XMPPClient, _clients, q

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def encode_frame(opcode, payload, mask=True, fin=True, rsv=0):
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def connect(port, tls=False, cafile=None, host="127.0.0.1", timeout=5.0):
    sock = socket.create_connection((host, port), timeout=timeout * TIMEOUT_SCALE)
    if tls:
        ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
        if not cafile:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    return sock


def handshake_request(path="/xmpp-websocket", host="localhost", key=True, version="13",
                      protocol="xmpp", origin=None, extra=None, method="GET"):
    """The bytes of an upgrade request (key=True: a fresh random key); a header given as
    None is left out."""
    key = base64.b64encode(os.urandom(16)).decode() if key is True else key
    hdrs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version),
            ("Sec-WebSocket-Protocol", protocol), ("Origin", origin)]
    hdrs += list((extra or {}).items())
    lines = ["%s %s HTTP/1.1" % (method, path)]
    lines += ["%s: %s" % (k, v) for k, v in hdrs if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock, timeout=5.0):
    """(status code, {lower-case header: value}, body bytes read so far, bytes after the
    head). Reads until the head is in and, with Content-Length, the body."""
    sock.settimeout(timeout * TIMEOUT_SCALE)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before the HTTP response head: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        want = int(headers["content-length"])
        while len(rest) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, rest = rest[:want], rest[want:]
    return status, headers, body, rest


def http_get(port, path, tls=False, cafile=None, host="localhost", extra=None):
    """A plain GET (no upgrade): (status, headers, body)."""
    sock = connect(port, tls, cafile)
    try:
        lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host]
        lines += ["%s: %s" % kv for kv in (extra or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, headers, body, _ = read_response(sock)
        return status, headers, body
    finally:
        sock.close()


class FrameReader:
    """Reads the server's frames (never masked) from a socket."""

    def __init__(self, sock, pending=b""):
        self.sock = sock
        self.buf = pending

    def _need(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete WebSocket frame in time")
            self.sock.settimeout(max(remaining, 0.001))
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                raise TimeoutError("no complete WebSocket frame in time")
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                chunk = b""
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def frame(self, timeout):
        """(fin, opcode, payload); raises EOFError, TimeoutError."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "the server masked a frame (RFC 6455 5.1 forbids it)"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload


class WSClient(XMPPClient):
    """XMPPClient over ws:// (tls=False) or wss:// (tls=True)."""

    def __init__(self, port, tls=False, cafile=None, domain="localhost", timeout=5.0,
                 path="/xmpp-websocket", origin=None, host="127.0.0.1"):
        super().__init__(port, host=host, domain=domain, cafile=cafile, timeout=timeout)
        if tls:
            self.sock = self.ssl_context().wrap_socket(self.sock, server_hostname="localhost")
            self.tls = True
        self.messages = []     # text messages from the server, in order
        self.close_code = None  # status code of the server's close frame
        self.sock.sendall(handshake_request(path=path, origin=origin))
        status, headers, body, rest = read_response(self.sock, timeout)
        assert status == 101, "upgrade refused: %d %r" % (status, body)
        assert headers.get("sec-websocket-protocol") == "xmpp", headers
        self.frames = FrameReader(self.sock, rest)

    def stream_header(self, to=None):
        to = self.domain if to is None else to
        return "<open xmlns='%s' to=%s version='1.0' xml:lang='en'/>" % (NS_FRAMING, quoteattr(to))

    def send_raw(self, data):
        self._trace(">>", data)
        self.sock.sendall(encode_frame(OP_TEXT, data))

    def send_frame(self, opcode, payload, **kw):
        self._trace(">>", b"(frame %d, %d bytes)" % (opcode, len(payload)))
        self.sock.sendall(encode_frame(opcode, payload, **kw))

    def end_stream(self, timeout=None):
        self.send("<close xmlns='%s'/>" % NS_FRAMING)
        self.assert_closed(timeout)

    def next_frame(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        return self.frames.frame(timeout)

    def _read(self, timeout):
        """The bytes of the next text message for the stream parser; b'' once the server
        closed (its close frame, answered, or EOF)."""
        if self.eof:
            return b""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fin, op, payload = self.frames.frame(max(deadline - time.monotonic(), 0.001))
            except EOFError:
                self.eof = True
                self._trace("<<", b"(EOF)")
                return b""
            if op == OP_PING:
                self.sock.sendall(encode_frame(OP_PONG, payload))
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self._trace("<<", b"(close frame %r)" % (self.close_code,))
                try:
                    self.sock.sendall(encode_frame(OP_CLOSE, payload[:2]))
                except OSError:
                    pass
                self.eof = True
                return b""
            assert op == OP_TEXT and fin, "server sent opcode %d fin %s" % (op, fin)
            self._trace("<<", payload)
            return self._translate(payload)

    def _translate(self, payload):
        text = payload.decode("utf-8")
        self.messages.append(text)
        root = ET.fromstring(text)  # RFC 7395 3.3.3: every message stands alone
        if root.tag == "{%s}open" % NS_FRAMING:
            attrs = "".join(" %s=%s" % (k.split("}")[-1] if k.startswith("{") and "XML" not in k
                                        else k.replace("{http://www.w3.org/XML/1998/namespace}",
                                                       "xml:"), quoteattr(v))
                            for k, v in root.attrib.items())
            return ("<stream:stream xmlns='jabber:client' xmlns:stream="
                    "'http://etherx.jabber.org/streams'%s>" % attrs).encode()
        if root.tag == "{%s}close" % NS_FRAMING:
            return b"</stream:stream>"
        return payload

    def login(self, user, password, mech="SCRAM-SHA-256", resource=None, tls=None):
        """<open/>, SASL, bind (no STARTTLS on a WebSocket). Returns the full JID."""
        self.open_stream()
        result = self.auth(user, password, mech)
        assert result == "success", "login of %s with %s failed: %s" % (user, mech, result)
        return self.bind(resource)


# ---------------------------------------------------------------- python3-websockets
OPEN_TAG = q(NS_FRAMING, "open")
CLOSE_TAG = q(NS_FRAMING, "close")
# A top-level stanza sent without a namespace: RFC 7395 3.3.3 has every message carry its
# own (no stream header declares jabber:client), so send() adds it.
_BARE_STANZA = re.compile(r"^<(message|presence|iq)(?=[\s/>])(?![^>]*\sxmlns=)")


def ws_ssl_context(cafile):
    """TLS context for wss: the certificate checked against cafile (and the name in the
    URL); without cafile nothing is checked (a test server's self-signed certificate)."""
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


NS_XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
REL_WEBSOCKET = "urn:xmpp:alt-connections:websocket"


def url_get(base, path, cafile=None, timeout=10.0):
    """GET base + path (base: http(s)://host:port, or a ws(s):// URL, whose host and port
    are used) with the Host header of base; returns (status, headers dict, body bytes)."""
    u = urllib.parse.urlsplit(base)
    if u.scheme in ("https", "wss"):
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout,
                                           context=ws_ssl_context(cafile))
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def host_meta_websocket_urls(base, cafile=None):
    """The WebSocket URLs that /.well-known/host-meta (XRD) and host-meta.json (XEP-0156)
    name at base: (xrd_urls, json_urls). Asserts both answer 200."""
    status, _, body = url_get(base, "/.well-known/host-meta", cafile)
    assert status == 200, (status, body[:300])
    xrd = ET.fromstring(body)
    assert xrd.tag == q(NS_XRD, "XRD"), body[:300]
    xrd_urls = [link.get("href") for link in xrd.findall(q(NS_XRD, "Link"))
                if link.get("rel") == REL_WEBSOCKET]
    status, _, body = url_get(base, "/.well-known/host-meta.json", cafile)
    assert status == 200, (status, body[:300])
    json_urls = [link.get("href") for link in json.loads(body).get("links", [])
                 if link.get("rel") == REL_WEBSOCKET]
    return xrd_urls, json_urls


class WSLibClient(XMPPClient):
    def __init__(self, url, domain="localhost", cafile=None, timeout=DEFAULT_TIMEOUT,
                 subprotocols=("xmpp",), origin=None, extra_headers=None):
        """Opens the WebSocket (handshake done, nothing sent yet). url: ws:// or wss://;
        cafile: the certificate to trust for wss."""
        u = urllib.parse.urlsplit(url)
        # XMPPClient's attributes, without its TCP socket.
        self.url = url
        self.host = u.hostname
        self.port = u.port
        self.domain = domain
        self.cafile = cafile
        self.timeout = timeout * TIMEOUT_SCALE
        self.header = None
        self.headers = []
        self.features = None
        self.jid = None
        self.tls = u.scheme == "wss"
        self.eof = False
        self.stream_ended = False
        self.skipped = []
        self.num = next(_clients)
        self.sock = None
        self.loop = asyncio.new_event_loop()
        kw = {"subprotocols": list(subprotocols), "open_timeout": self.timeout,
              "ping_interval": None, "max_size": 1 << 20}
        if self.tls:
            kw["ssl"] = ws_ssl_context(cafile)
        if origin:
            kw["origin"] = origin
        if extra_headers:
            kw["extra_headers"] = extra_headers
        async def connect():
            # Made inside the running loop: websockets' connect() takes the current one.
            return await websockets.connect(url, **kw)
        try:
            self.ws = self._run(connect(), self.timeout)
        except BaseException:
            self.loop.close()
            raise
        sockname = self.ws.transport.get_extra_info("sockname")
        self.local_address = "%s:%d" % (sockname[0], sockname[1])
        self.subprotocol = self.ws.subprotocol
        self._trace("--", ("connected to %s from %s (subprotocol %s)"
                           % (url, self.local_address, self.subprotocol)).encode())

    def _run(self, coro, timeout):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    # ------------------------------------------------------------- framing
    def send_raw(self, data):
        """One WebSocket text message (a complete XML element, RFC 7395 3.3.3)."""
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        self._trace(">>", text.encode("utf-8"))
        try:
            self._run(self.ws.send(text), self.timeout)
        except websockets.ConnectionClosed as e:
            raise BrokenPipeError("WebSocket closed: %s" % e) from None

    def send(self, stanza):
        self.send_raw(_BARE_STANZA.sub(r"<\1 xmlns='jabber:client'", stanza, count=1))

    def _next_event(self, timeout):
        """The next message as a StreamParser event: <open/> is the stream header,
        <close/> the stream's end, anything else an element."""
        if self.eof:
            raise StreamClosed("the WebSocket is closed", eof=True)
        try:
            msg = self._run(self.ws.recv(), max(timeout, 0.001))
        except asyncio.TimeoutError:
            raise TimeoutError("nothing received from server within %.1fs" % timeout) from None
        except websockets.ConnectionClosed as e:
            self.eof = True
            self.close_code = e.rcvd.code if e.rcvd else None
            self._trace("<<", ("(closed: %s)" % e).encode())
            raise StreamClosed("server closed the WebSocket (%s)" % e, eof=True) from None
        if isinstance(msg, bytes):
            raise AssertionError("binary WebSocket message from the server: %r" % msg[:100])
        self._trace("<<", msg.encode("utf-8"))
        el = ET.fromstring(msg)
        if el.tag == OPEN_TAG:
            return ("header", el.tag, dict(el.attrib))
        if el.tag == CLOSE_TAG:
            return ("end",)
        return ("element", el)

    # ------------------------------------------------------------- stream level
    def stream_header(self, to=None):
        to = self.domain if to is None else to
        return "<open xmlns='%s' to=%s version='1.0'/>" % (NS_FRAMING, quoteattr(to))

    def _restart(self):
        # RFC 7395 3.4/3.5: after SASL success the client sends a new <open/>.
        self.stream_ended = False
        return self.open_stream()

    def starttls(self, timeout=None):
        raise AssertionError("no STARTTLS over WebSocket (RFC 7395 3.6: TLS is wss)")

    def login(self, user, password, mech="SCRAM-SHA-256", resource=None, tls=False):
        """<open/>, SASL, <open/>, bind. Returns the full JID."""
        return super().login(user, password, mech=mech, resource=resource, tls=False)

    def assert_closed(self, timeout=None):
        """Reads until the server closes the WebSocket."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self._next_event(max(deadline - time.monotonic(), 0))
            except StreamClosed:
                return
            except TimeoutError:
                raise AssertionError("server did not close the WebSocket within %.1fs"
                                     % timeout) from None
            if ev[0] == "end":
                self.stream_ended = True

    def end_stream(self, timeout=None):
        """Sends <close/>; asserts the server answers <close/> and closes the WebSocket."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        self.send("<close xmlns='%s'/>" % NS_FRAMING)
        deadline = time.monotonic() + timeout
        while not self.stream_ended:
            try:
                el = self.recv(max(deadline - time.monotonic(), 0))
            except StreamClosed as e:
                if e.eof:
                    raise AssertionError("server closed the WebSocket without <close/>") from None
                break
            except TimeoutError:
                raise AssertionError("no <close/> from server within %.1fs" % timeout) from None
            self.skipped.append(el)
        self.assert_closed(max(deadline - time.monotonic(), 1.0))

    def close(self):
        if self.loop.is_closed():
            return
        try:
            self._run(self.ws.close(), 2.0)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.loop.close()

    def abort(self):
        """Drops the TCP connection without a WebSocket close."""
        if not self.loop.is_closed():
            self.ws.transport.abort()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()


def exchange_messages(ws, tcp):
    """A message each way between a bound WebSocket client and a bound TCP client, each
    arriving from the other's full JID."""
    import uuid
    token = "ws-to-tcp-" + uuid.uuid4().hex[:8]
    ws.message(tcp.jid, token)
    assert tcp.wait_message(token).get("from") == ws.jid
    token = "tcp-to-ws-" + uuid.uuid4().hex[:8]
    tcp.message(ws.jid, token)
    assert ws.wait_message(token).get("from") == tcp.jid

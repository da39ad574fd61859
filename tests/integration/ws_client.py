"""XMPP over WebSocket (RFC 7395) for the integration tests, on raw sockets so that tests can
also send what a correct client never would (unmasked frames, invalid UTF-8, bad handshakes).

WSClient is an XMPPClient whose bytes travel in WebSocket text messages: its stream header is
<open/>, its end <close/>, and each message the server sends must parse as a standalone XML
document (RFC 7395 3.3.3), which _read checks before handing it to the stream parser (the
<open/> and <close/> turned into the stream header and end tag the parser expects), so all
the XMPPClient helpers (SASL, bind, im_*) work unchanged.
"""
import base64
import os
import socket
import ssl
import struct
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

from xmpp_client import TIMEOUT_SCALE, XMPPClient

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
                 path="/xmpp-websocket", origin=None):
        super().__init__(port, domain=domain, cafile=cafile, timeout=timeout)
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
        while True:
            try:
                fin, op, payload = self.frames.frame(max(timeout, 0.001))
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

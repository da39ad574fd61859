"""XMPP over WebSocket (RFC 7395) for the tests: WSXMPPClient is XMPPClient with the
WebSocket framing instead of a TCP stream, so SASL (SCRAM, with the server signature
checked), bind, iq, messages and the waits are XMPPClient's own.

The transport is python3-websockets (Debian's 10.4, its asyncio client): each client runs a
private event loop, and every send or wait runs it until done, so the tests stay plain
synchronous code.

    c = WSXMPPClient("wss://localhost:5281/xmpp-websocket", cafile="cert.pem")
    c.login("alice", "secret", mech="SCRAM-SHA-1")      # <open/>, SASL, <open/>, bind
    c.message("bob@localhost", "hi")
"""

import asyncio
import http.client
import json
import re
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import websockets

from xmpp_client import (DEFAULT_TIMEOUT, TIMEOUT_SCALE, StreamClosed, XMPPClient, _clients,
                         q)

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
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


def http_get(base, path, cafile=None, timeout=10.0):
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
    status, _, body = http_get(base, "/.well-known/host-meta", cafile)
    assert status == 200, (status, body[:300])
    xrd = ET.fromstring(body)
    assert xrd.tag == q(NS_XRD, "XRD"), body[:300]
    xrd_urls = [link.get("href") for link in xrd.findall(q(NS_XRD, "Link"))
                if link.get("rel") == REL_WEBSOCKET]
    status, _, body = http_get(base, "/.well-known/host-meta.json", cafile)
    assert status == 200, (status, body[:300])
    json_urls = [link.get("href") for link in json.loads(body).get("links", [])
                 if link.get("rel") == REL_WEBSOCKET]
    return xrd_urls, json_urls


class WSXMPPClient(XMPPClient):
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

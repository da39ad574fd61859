"""A small raw XMPP client for the integration tests.

It speaks just enough of RFC 6120 to drive the server step by step: a TCP socket (wrapped in
TLS after STARTTLS), an incremental namespace-aware expat parser that yields the stream
header and each top-level element as an xml.etree.ElementTree element, SASL PLAIN and the
client side of SCRAM (RFC 5802 / RFC 7677, verifying the server signature), resource binding
and the legacy session iq.

Every wait is bounded: each method that reads takes a timeout (default DEFAULT_TIMEOUT).
"""

import base64
import hashlib
import hmac
import itertools
import os
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections import deque
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

DEFAULT_TIMEOUT = 5.0
# Every wait of a client, its own default and a timeout passed to a method alike, is
# multiplied by this: slow servers, e.g. under valgrind (conftest.py sets it then). Only
# longer waits follow; a normal run uses 1.
TIMEOUT_SCALE = float(os.environ.get("XMPP_TIMEOUT_SCALE") or 1)

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING = "urn:xmpp:ping"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"


def q(ns, name):
    """Clark notation: q(NS_SASL, 'success') -> '{urn:...sasl}success'."""
    return "{%s}%s" % (ns, name)


STREAM_TAG = q(NS_STREAM, "stream")
FEATURES_TAG = q(NS_STREAM, "features")
STREAM_ERROR_TAG = q(NS_STREAM, "error")
MESSAGE_TAG = q(NS_CLIENT, "message")
PRESENCE_TAG = q(NS_CLIENT, "presence")
IQ_TAG = q(NS_CLIENT, "iq")

_ids = itertools.count(1)
_clients = itertools.count(1)


def new_id(prefix="id"):
    return "%s%d_%s" % (prefix, next(_ids), os.urandom(3).hex())


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def dump(el):
    """Readable serialisation of an element for assertion messages."""
    if el is None:
        return "None"
    try:
        return ET.tostring(el, encoding="unicode")
    except Exception:  # pragma: no cover - debugging aid only
        return repr(el)


def local(tag):
    return tag.rsplit("}", 1)[-1]


def child_conditions(el, ns):
    """Local names of the children of `el` in namespace `ns` (error conditions)."""
    return [local(c.tag) for c in el if c.tag.startswith("{%s}" % ns)]


def stanza_error_condition(el):
    """(type, condition) of the <error/> child of an error stanza, or (None, None)."""
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        return None, None
    conds = child_conditions(err, NS_STANZAS)
    conds = [c for c in conds if c != "text"]
    return err.get("type"), (conds[0] if conds else None)


class StreamClosed(Exception):
    """The server ended the stream (</stream:stream>) or closed the connection."""

    def __init__(self, msg, eof):
        super().__init__(msg)
        self.eof = eof


class SASLError(AssertionError):
    pass


class MarkupCutter:
    """Holds back bytes so that expat is only ever fed data ending right after a complete
    piece of markup ('>' of a tag, comment, CDATA section or PI).

    Debian's expat 2.5.0 carries the CVE-2023-52425 backport ("reparse deferral"): when a
    buffer ends inside a token, expat may not look at that token again until much more data
    has arrived, so an element split across two reads could stay unreported forever. Python
    3.11 cannot switch that off (no SetReparseDeferralEnabled), so we never end a feed
    inside a token."""

    def __init__(self):
        self.buf = b""
        self.pos = 0          # scan position in buf
        self.state = "text"   # text | tag | quote | comment | cdata | pi | decl
        self.quote = b""
        self.prev = "tag"

    def push(self, data):
        b = self.buf + data
        n = len(b)
        i = self.pos
        safe = 0
        while i < n:
            st = self.state
            if st == "text":
                j = b.find(b"<", i)
                if j < 0:
                    i = n
                    break
                rest = b[j:j + 9]
                if rest.startswith(b"<!--"):
                    self.state, i = "comment", j + 4
                elif rest.startswith(b"<![CDATA["):
                    self.state, i = "cdata", j + 9
                elif rest.startswith(b"<?"):
                    self.state, i = "pi", j + 2
                elif len(rest) < 9 and (rest == b"<" or b"<!--".startswith(rest)
                                        or b"<![CDATA[".startswith(rest)):
                    i = j          # cannot classify yet: wait for more bytes
                    break
                elif rest.startswith(b"<!"):
                    self.state, i = "decl", j + 2
                else:
                    self.state, i = "tag", j + 1
            elif st == "tag" or st == "decl":
                j1 = b.find(b">", i)
                jq = min([x for x in (b.find(b"'", i), b.find(b'"', i)) if x >= 0], default=-1)
                if jq >= 0 and (j1 < 0 or jq < j1):
                    self.state, self.quote, i = "quote", b[jq:jq + 1], jq + 1
                    self.prev = st
                elif j1 >= 0:
                    self.state, i = "text", j1 + 1
                    safe = i
                else:
                    i = n
            elif st == "quote":
                j = b.find(self.quote, i)
                if j < 0:
                    i = n
                else:
                    self.state, i = self.prev, j + 1
            else:
                end = {"comment": b"-->", "cdata": b"]]>", "pi": b"?>"}[st]
                j = b.find(end, i)
                if j < 0:
                    i = max(i, n - len(end) + 1)
                    break
                self.state, i = "text", j + len(end)
                safe = i
        self.buf = b[safe:]
        self.pos = i - safe
        return b[:safe]


class StreamParser:
    """Incremental parser of one XML stream (a new one is made at every stream restart).

    Events queued in self.events: ('header', tag, attrs), ('element', Element), ('end',)."""

    def __init__(self):
        self.events = deque()
        self.depth = 0
        self.builder = None
        p = expat.ParserCreate(namespace_separator="}")
        p.buffer_text = True
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._data
        self.parser = p
        self.cutter = MarkupCutter()

    @staticmethod
    def _name(n):
        return "{" + n if "}" in n else n

    def _start(self, name, attrs):
        name = self._name(name)
        attrs = {self._name(k): v for k, v in attrs.items()}
        if self.depth == 0:
            self.events.append(("header", name, attrs))
        else:
            if self.depth == 1:
                self.builder = ET.TreeBuilder()
            self.builder.start(name, attrs)
        self.depth += 1

    def _end(self, name):
        self.depth -= 1
        if self.depth == 0:
            self.events.append(("end",))
            return
        self.builder.end(self._name(name))
        if self.depth == 1:
            self.events.append(("element", self.builder.close()))
            self.builder = None

    def _data(self, text):
        if self.depth >= 2:
            self.builder.data(text)

    def feed(self, data):
        safe = self.cutter.push(data)
        if safe:
            self.parser.Parse(safe, False)


class ScramClient:
    """Client side of one SCRAM exchange (RFC 5802). No channel binding ('n,,') unless the
    caller sets gs2_header (e.g. 'p=tls-exporter,,') and cbind_data (the binding bytes,
    which go into c= after the header)."""

    def __init__(self, username, password, hash_name="SHA-256", nonce=None):
        self.hash = {"SHA-256": hashlib.sha256, "SHA-1": hashlib.sha1}[hash_name]
        self.hash_name = {"SHA-256": "sha256", "SHA-1": "sha1"}[hash_name]
        self.mechanism = "SCRAM-" + hash_name
        self.username = username.replace("=", "=3D").replace(",", "=2C")
        self.password = password.encode("utf-8")
        self.cnonce = nonce or base64.b64encode(os.urandom(18)).decode("ascii")
        self.gs2_header = "n,,"
        self.cbind_data = b""
        self.client_first_bare = "n=%s,r=%s" % (self.username, self.cnonce)
        self.server_signature = None
        self.server_first = None

    def client_first(self):
        return self.gs2_header + self.client_first_bare

    @staticmethod
    def parse(msg):
        out = {}
        for part in msg.split(","):
            if len(part) < 2 or part[1] != "=":
                raise SASLError("bad SCRAM attribute %r in %r" % (part, msg))
            out[part[0]] = part[2:]
        return out

    def _hmac(self, key, msg):
        return hmac.new(key, msg, self.hash).digest()

    def client_final(self, server_first):
        self.server_first = server_first
        attrs = self.parse(server_first)
        for k in ("r", "s", "i"):
            if k not in attrs:
                raise SASLError("server-first-message lacks %s=: %r" % (k, server_first))
        nonce = attrs["r"]
        if not nonce.startswith(self.cnonce) or len(nonce) <= len(self.cnonce):
            raise SASLError("server nonce %r does not extend client nonce %r" % (nonce, self.cnonce))
        self.salt = base64.b64decode(attrs["s"], validate=True)
        self.iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac(self.hash_name, self.password, self.salt, self.iterations)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = self.hash(client_key).digest()
        without_proof = "c=%s,r=%s" % (b64(self.gs2_header.encode("utf-8") + self.cbind_data),
                                       nonce)
        auth_message = ",".join((self.client_first_bare, server_first, without_proof)).encode("utf-8")
        client_sig = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = self._hmac(salted, b"Server Key")
        self.server_signature = self._hmac(server_key, auth_message)
        return without_proof + ",p=" + b64(proof)

    def verify_server_final(self, server_final):
        attrs = self.parse(server_final)
        if "e" in attrs:
            raise SASLError("server-final-message carries error %r" % attrs["e"])
        if "v" not in attrs:
            raise SASLError("server-final-message lacks v=: %r" % server_final)
        if base64.b64decode(attrs["v"], validate=True) != self.server_signature:
            raise SASLError("server signature does not verify (%r)" % server_final)
        return True


class XMPPClient:
    def __init__(self, port, host="127.0.0.1", domain="localhost", cafile=None,
                 timeout=DEFAULT_TIMEOUT, source=None):
        """source: local address to connect from (e.g. '127.0.0.2': any 127.x.y.z works
        on Linux loopback), so tests can act as several client addresses."""
        self.host = host
        self.port = port
        self.domain = domain
        self.cafile = cafile
        self.timeout = timeout * TIMEOUT_SCALE
        self.sock = socket.create_connection(
            (host, port), timeout=self.timeout,
            source_address=None if source is None else (source, 0))
        self.parser = StreamParser()
        self.header = None        # attributes of the latest server stream header
        self.headers = []         # every server stream header seen (one per restart)
        self.features = None      # latest <stream:features/>
        self.jid = None           # full JID after bind
        self.tls = False
        self.eof = False
        self.stream_ended = False
        self.skipped = []         # elements discarded by wait_for (debugging aid)
        self.num = next(_clients)
        self._trace("--", ("connected to %s:%d" % (host, port)).encode())

    # ---------------------------------------------------------------- low level I/O
    def _trace(self, direction, data):
        # Printed to stdout: pytest shows it only for failing tests.
        text = data.decode("utf-8", "replace")
        if len(text) > 1500:
            text = text[:1000] + "...[%d chars]..." % (len(text) - 1500) + text[-500:]
        print("[c%d %s] %s" % (self.num, direction, text))

    def send_raw(self, data):
        self._trace(">>", data)
        self.sock.sendall(data)

    def send(self, stanza):
        self.send_raw(stanza.encode("utf-8"))

    def send_tolerant(self, stanza):
        """Sends, ignoring a connection the server already closed (it may stop reading in
        the middle of data it refuses). Returns False when sending failed. Bytes are sent
        as they are."""
        try:
            if isinstance(stanza, bytes):
                self.send_raw(stanza)
            else:
                self.send(stanza)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            return False

    def _read(self, timeout):
        """One chunk of bytes; b'' on EOF; raises TimeoutError."""
        if self.eof:
            return b""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise TimeoutError("no data from server within %.1fs" % timeout)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        if not data:
            self.eof = True
            self._trace("<<", b"(EOF)")
        else:
            self._trace("<<", data)
        return data

    def _next_event(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.parser.events:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("nothing received from server within %.1fs" % timeout)
            data = self._read(remaining)
            if not data:
                raise StreamClosed("server closed the TCP connection", eof=True)
            self.parser.feed(data)
        return self.parser.events.popleft()

    def recv(self, timeout=None):
        """The next top-level element. Stream headers are recorded and skipped.
        Raises StreamClosed on </stream:stream> or EOF, TimeoutError on timeout."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        while True:
            ev = self._next_event(max(deadline - time.monotonic(), 0))
            if ev[0] == "header":
                self.header = ev[2]
                self.headers.append((ev[1], ev[2]))
                continue
            if ev[0] == "end":
                self.stream_ended = True
                raise StreamClosed("server sent </stream:stream>", eof=False)
            return ev[1]

    def wait_for(self, predicate, timeout=None, what="matching element"):
        """Reads elements until predicate(el) is true; returns it. Others are discarded."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                el = self.recv(max(remaining, 0))
            except TimeoutError:
                raise AssertionError("timed out after %.1fs waiting for %s; received meanwhile: %s"
                                     % (timeout, what, [dump(e) for e in seen])) from None
            except StreamClosed as e:
                raise AssertionError("%s while waiting for %s; received before: %s"
                                     % (e, what, [dump(x) for x in seen])) from None
            if predicate(el):
                return el
            seen.append(el)
            self.skipped.append(el)

    def expect_nothing(self, predicate, duration):
        """Asserts that no element matching predicate arrives within `duration` seconds."""
        deadline = time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                el = self.recv(remaining)
            except TimeoutError:
                return
            assert not predicate(el), "unexpected element received: %s" % dump(el)
            self.skipped.append(el)

    def assert_closed(self, timeout=None):
        """Reads (and parses, tolerating </stream:stream>) until the server closes TCP."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("server did not close the TCP connection within %.1fs" % timeout)
            try:
                data = self._read(remaining)
            except TimeoutError:
                raise AssertionError("server did not close the TCP connection within %.1fs"
                                     % timeout) from None
            if not data:
                return
            if not self.stream_ended:
                try:
                    self.parser.feed(data)
                except expat.ExpatError:
                    pass
                for ev in self.parser.events:
                    if ev[0] == "end":
                        self.stream_ended = True

    def expect_stream_error(self, condition, timeout=None):
        """Reads until <stream:error/>, asserts its condition, then that the server closes
        the connection. Returns the error element. `condition` may be a string or a set."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                el = self.recv(max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise AssertionError("no <stream:error/> within %.1fs; received: %s"
                                     % (timeout, [dump(e) for e in seen])) from None
            except StreamClosed as e:
                raise AssertionError("expected <stream:error><%s/></stream:error>, but %s; "
                                     "received before: %s"
                                     % (condition, e, [dump(x) for x in seen])) from None
            if el.tag == STREAM_ERROR_TAG:
                break
            seen.append(el)
        conds = [c for c in child_conditions(el, NS_STREAMS_ERR) if c != "text"]
        wanted = {condition} if isinstance(condition, str) else set(condition)
        assert len(conds) == 1 and conds[0] in wanted, \
            "stream error condition %s, expected %s: %s" % (conds, sorted(wanted), dump(el))
        self.assert_closed(max(deadline - time.monotonic(), 1.0))
        return el

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Abruptly closes the TCP connection without ending the stream."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()

    def end_stream(self, timeout=None):
        """Sends </stream:stream>; asserts the server answers </stream:stream> and closes."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        self.send("</stream:stream>")
        while not self.stream_ended:
            try:
                el = self.recv(max(deadline - time.monotonic(), 0))
            except StreamClosed as e:
                if e.eof:
                    raise AssertionError("server closed TCP without sending </stream:stream>") from None
                break
            except TimeoutError:
                raise AssertionError("no </stream:stream> from server within %.1fs" % timeout) from None
            self.skipped.append(el)
        self.assert_closed(max(deadline - time.monotonic(), 1.0))

    # ---------------------------------------------------------------- stream level
    def stream_header(self, to=None):
        to = self.domain if to is None else to
        return ("<?xml version='1.0'?><stream:stream to=%s version='1.0' xml:lang='en' "
                "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                % quoteattr(to))

    def open_stream(self, to=None, timeout=None):
        """Sends a stream header, waits for the server's header and <stream:features/>.
        Returns the features element (also in self.features); header attrs in self.header."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        self.header = None
        self.send(self.stream_header(to))
        el = self.wait_for(lambda e: True, timeout, "stream features")
        assert self.header is not None, "no stream header before %s" % dump(el)
        assert el.tag == FEATURES_TAG, "expected <stream:features/>, got %s" % dump(el)
        self.features = el
        return el

    def _restart(self):
        self.parser = StreamParser()
        self.stream_ended = False
        return self.open_stream()

    def mechanisms(self, features=None):
        features = self.features if features is None else features
        mechs = features.find(q(NS_SASL, "mechanisms"))
        if mechs is None:
            return []
        return [m.text.strip() for m in mechs.findall(q(NS_SASL, "mechanism")) if m.text]

    def ssl_context(self):
        if self.cafile:
            ctx = ssl.create_default_context(cafile=self.cafile)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def starttls(self, timeout=None):
        """STARTTLS, TLS handshake (certificate checked when cafile was given), stream
        restart. Returns the new features."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        el = self.recv(timeout)
        assert el.tag == q(NS_TLS, "proceed"), "expected <proceed/>, got %s" % dump(el)
        assert not self.parser.events, "data after <proceed/>"
        self.sock.settimeout(timeout)
        self.sock = self.ssl_context().wrap_socket(self.sock, server_hostname=self.domain)
        self.tls = True
        return self._restart()

    # ---------------------------------------------------------------- SASL
    def _sasl_recv(self, timeout):
        el = self.recv(timeout)
        assert el.tag.startswith("{%s}" % NS_SASL), "expected a SASL element, got %s" % dump(el)
        return el

    @staticmethod
    def failure_condition(el):
        conds = [c for c in child_conditions(el, NS_SASL) if c != "text"]
        assert len(conds) == 1, "SASL <failure/> must carry exactly one condition: %s" % dump(el)
        return conds[0]

    def auth_plain(self, user, password, timeout=None):
        """SASL PLAIN. Returns 'success' (the stream is then restarted, new features in
        self.features) or the failure condition name."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                  % (NS_SASL, b64("\0%s\0%s" % (user, password))))
        el = self._sasl_recv(timeout)
        if el.tag == q(NS_SASL, "failure"):
            return self.failure_condition(el)
        assert el.tag == q(NS_SASL, "success"), "expected <success/>, got %s" % dump(el)
        self._restart()
        return "success"

    def auth_scram(self, user, password, hash_name="SHA-256", timeout=None):
        """SCRAM-SHA-256 / SCRAM-SHA-1, verifying the server signature. Returns 'success'
        (stream restarted) or the failure condition name."""
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        sc = ScramClient(user, password, hash_name)
        self.last_scram = sc
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                  % (NS_SASL, sc.mechanism, b64(sc.client_first())))
        el = self._sasl_recv(timeout)
        if el.tag == q(NS_SASL, "failure"):
            return self.failure_condition(el)
        assert el.tag == q(NS_SASL, "challenge"), "expected <challenge/>, got %s" % dump(el)
        server_first = base64.b64decode(el.text or "", validate=True).decode("utf-8")
        self.send("<response xmlns='%s'>%s</response>"
                  % (NS_SASL, b64(sc.client_final(server_first))))
        el = self._sasl_recv(timeout)
        if el.tag == q(NS_SASL, "failure"):
            return self.failure_condition(el)
        if el.tag == q(NS_SASL, "challenge"):
            # Server-final-message sent as a challenge (RFC 6120 6.3.10 allows it).
            sc.verify_server_final(base64.b64decode(el.text or "", validate=True).decode("utf-8"))
            self.send("<response xmlns='%s'/>" % NS_SASL)
            el = self._sasl_recv(timeout)
            if el.tag == q(NS_SASL, "failure"):
                raise SASLError("failure after a valid server-final-message: %s" % dump(el))
            assert el.tag == q(NS_SASL, "success"), "expected <success/>, got %s" % dump(el)
        else:
            assert el.tag == q(NS_SASL, "success"), "expected <success/>, got %s" % dump(el)
            data = (el.text or "").strip()
            if not data or data == "=":
                raise SASLError("SCRAM <success/> without server-final-message (v=): %s" % dump(el))
            sc.verify_server_final(base64.b64decode(data, validate=True).decode("utf-8"))
        self._restart()
        return "success"

    def auth(self, user, password, mech="SCRAM-SHA-256"):
        if mech == "PLAIN":
            return self.auth_plain(user, password)
        if mech.startswith("SCRAM-"):
            return self.auth_scram(user, password, mech[len("SCRAM-"):])
        raise ValueError(mech)

    # ---------------------------------------------------------------- session
    def iq(self, type_, payload, to=None, timeout=None, id=None):
        """Sends an iq and returns the response with the same id (result or error)."""
        iq_id = id or new_id("iq")
        to_attr = "" if to is None else " to=%s" % quoteattr(to)
        self.send("<iq type='%s' id=%s%s>%s</iq>" % (type_, quoteattr(iq_id), to_attr, payload))
        return self.wait_for(lambda e: e.tag == IQ_TAG and e.get("id") == iq_id
                             and e.get("type") in ("result", "error"),
                             timeout, "iq response id=%s" % iq_id)

    def bind(self, resource=None, timeout=None):
        """Binds a resource; returns the full JID. Raises AssertionError with the iq if the
        server returns an error."""
        if resource is None:
            payload = "<bind xmlns='%s'/>" % NS_BIND
        else:
            payload = "<bind xmlns='%s'><resource>%s</resource></bind>" % (NS_BIND, escape(resource))
        res = self.iq("set", payload, timeout=timeout)
        assert res.get("type") == "result", "bind failed: %s" % dump(res)
        jid = res.find("%s/%s" % (q(NS_BIND, "bind"), q(NS_BIND, "jid")))
        assert jid is not None and jid.text, "bind result without <jid/>: %s" % dump(res)
        self.jid = jid.text.strip()
        return self.jid

    def session(self, timeout=None):
        res = self.iq("set", "<session xmlns='%s'/>" % NS_SESSION, timeout=timeout)
        assert res.get("type") == "result", "session iq failed: %s" % dump(res)
        return res

    def presence(self, priority=None, extra=""):
        body = "" if priority is None else "<priority>%d</priority>" % priority
        self.send("<presence>%s%s</presence>" % (body, extra))

    def message(self, to, body, type_="chat", id=None, extra_attrs=""):
        mid = id or new_id("m")
        self.send("<message type='%s' to=%s id=%s%s><body>%s</body></message>"
                  % (type_, quoteattr(to), quoteattr(mid), extra_attrs, escape(body)))
        return mid

    def wait_message(self, body=None, timeout=None, sender=None):
        def pred(e):
            if e.tag != MESSAGE_TAG or e.get("type") == "error":
                return False
            if body is not None and e.findtext(q(NS_CLIENT, "body")) != body:
                return False
            return sender is None or e.get("from") == sender
        return self.wait_for(pred, timeout, "message body=%r" % body)

    def next_message(self, timeout=None):
        """The next non-error <message/> (other elements are skipped)."""
        return self.wait_for(lambda e: e.tag == MESSAGE_TAG and e.get("type") != "error",
                             timeout, "a message")

    def ping(self, to=None, timeout=None):
        return self.iq("get", "<ping xmlns='%s'/>" % NS_PING, to=to, timeout=timeout)

    def login(self, user, password, mech="SCRAM-SHA-256", resource=None, tls=True):
        """open_stream, STARTTLS (tls=True; 'auto': only if offered), SASL, bind.
        Returns the full JID."""
        features = self.open_stream()
        offered = features.find(q(NS_TLS, "starttls")) is not None
        if tls is True or (tls == "auto" and offered):
            self.starttls()
        result = self.auth(user, password, mech)
        if result != "success":
            raise SASLError("login of %s with %s failed: %s" % (user, mech, result))
        return self.bind(resource)

    # ---------------------------------------------------------------- IM helpers
    # Used by the test_im_*.py files. Unlike wait_for(), these never throw an element
    # away: whatever arrives while waiting for something else is kept in a pending list
    # that later waits look at first, so a roster push that overtakes an iq result, or
    # an offline message that arrives before a presence, is still there to be checked.
    def _im_box(self):
        box = getattr(self, "_im_pending", None)
        if box is None:
            box = self._im_pending = []
        return box

    def im_wait(self, predicate, timeout=None, what="matching element"):
        """The first element (pending or newly read) matching predicate; others are kept."""
        box = self._im_box()
        for i, el in enumerate(box):
            if predicate(el):
                del box[i]
                return el
        timeout = self.timeout if timeout is None else timeout * TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                el = self.recv(max(remaining, 0))
            except TimeoutError:
                raise AssertionError("timed out after %.1fs waiting for %s; pending: %s"
                                     % (timeout, what, [dump(e) for e in box])) from None
            except StreamClosed as e:
                raise AssertionError("%s while waiting for %s; pending: %s"
                                     % (e, what, [dump(e) for e in box])) from None
            if predicate(el):
                return el
            box.append(el)

    def im_collect(self, duration):
        """Reads whatever arrives within `duration` seconds into the pending list."""
        box = self._im_box()
        deadline = time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                box.append(self.recv(remaining))
            except TimeoutError:
                return

    def im_take(self, predicate):
        """Removes and returns every pending element matching predicate (no reading)."""
        box = self._im_box()
        hits = [el for el in box if predicate(el)]
        self._im_pending = [el for el in box if not predicate(el)]
        return hits

    def im_expect_none(self, predicate, duration=0.5, what="element"):
        """Asserts that no element matching predicate is pending or arrives within
        `duration` seconds (anything else that arrives is kept pending)."""
        self.im_collect(duration)
        hits = [el for el in self._im_box() if predicate(el)]
        assert not hits, "unexpected %s received: %s" % (what, [dump(e) for e in hits])

    def im_iq(self, type_, payload, to=None, timeout=None, id=None):
        """Sends an iq; returns the response with the same id; nothing else is lost."""
        iq_id = id or new_id("iq")
        to_attr = "" if to is None else " to=%s" % quoteattr(to)
        self.send("<iq type='%s' id=%s%s>%s</iq>" % (type_, quoteattr(iq_id), to_attr, payload))
        return self.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == iq_id
                            and e.get("type") in ("result", "error"),
                            timeout, "iq response id=%s" % iq_id)

    def im_sync(self, timeout=None):
        """Round trip of a message to our own full JID: once it is back, the router has
        handled everything this stream sent before it. Nothing else is lost."""
        token = new_id("sync")
        self.send("<message type='chat' to=%s id=%s><body>%s</body></message>"
                  % (quoteattr(self.jid), quoteattr(token), token))
        self.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("id") == token
                     and e.get("type") != "error", timeout, "own sync message %s" % token)

    def im_presence(self, to=None, type_=None, priority=None, show=None, status=None,
                    extra="", id=None):
        attrs = ""
        if to is not None:
            attrs += " to=%s" % quoteattr(to)
        if type_ is not None:
            attrs += " type=%s" % quoteattr(type_)
        if id is not None:
            attrs += " id=%s" % quoteattr(id)
        body = ""
        if show is not None:
            body += "<show>%s</show>" % escape(show)
        if status is not None:
            body += "<status>%s</status>" % escape(status)
        if priority is not None:
            body += "<priority>%d</priority>" % priority
        self.send("<presence%s>%s%s</presence>" % (attrs, body, extra))

    def im_wait_presence(self, sender=None, type_=None, timeout=None, bare_sender=None):
        """The next presence (pending or new) from `sender` (exact JID) or from any resource
        of `bare_sender`, with type `type_` (None: available)."""
        def pred(e):
            if e.tag != PRESENCE_TAG or e.get("type") != type_:
                return False
            frm = e.get("from") or ""
            if sender is not None and frm != sender:
                return False
            if bare_sender is not None and frm.split("/", 1)[0] != bare_sender:
                return False
            return True
        return self.im_wait(pred, timeout, "presence type=%s from %s" % (type_, sender or bare_sender))

    def im_wait_message(self, body=None, sender=None, timeout=None, type_=None):
        def pred(e):
            if e.tag != MESSAGE_TAG:
                return False
            if type_ is not None and e.get("type") != type_:
                return False
            if type_ is None and e.get("type") == "error":
                return False
            if body is not None and e.findtext(q(NS_CLIENT, "body")) != body:
                return False
            return sender is None or e.get("from") == sender
        return self.im_wait(pred, timeout, "message body=%r from %s" % (body, sender))

    # --- RFC 6121 section 2: rosters
    NS_ROSTER = "jabber:iq:roster"

    def roster_get(self, ver=None, timeout=None):
        """Roster get (this resource becomes an interested resource); the response iq."""
        v = "" if ver is None else " ver=%s" % quoteattr(ver)
        return self.im_iq("get", "<query xmlns='jabber:iq:roster'%s/>" % v, timeout=timeout)

    def roster_set(self, jid, name=None, groups=(), subscription=None, to=None, timeout=None,
                   raw_item=None):
        """Roster set of one item; the response iq (roster pushes stay pending)."""
        if raw_item is None:
            attrs = " jid=%s" % quoteattr(jid)
            if name is not None:
                attrs += " name=%s" % quoteattr(name)
            if subscription is not None:
                attrs += " subscription=%s" % quoteattr(subscription)
            raw_item = "<item%s>%s</item>" % (
                attrs, "".join("<group>%s</group>" % escape(g) for g in groups))
        return self.im_iq("set", "<query xmlns='jabber:iq:roster'>%s</query>" % raw_item,
                          to=to, timeout=timeout)

    def roster(self, timeout=None):
        """{contact bare JID: item dict} from a roster get (asserts a result)."""
        res = self.roster_get(timeout=timeout)
        assert res.get("type") == "result", "roster get failed: %s" % dump(res)
        query = res.find(q(self.NS_ROSTER, "query"))
        assert query is not None, "roster result without <query/>: %s" % dump(res)
        return self.roster_items(query)

    @staticmethod
    def roster_items(query):
        """{jid: {'name', 'subscription', 'ask', 'approved', 'groups'}} of a roster <query/>."""
        out = {}
        for it in query.findall(q(XMPPClient.NS_ROSTER, "item")):
            out[it.get("jid")] = {
                "name": it.get("name"),
                "subscription": it.get("subscription", "none"),
                "ask": it.get("ask"),
                "approved": it.get("approved"),
                "groups": sorted((g.text or "") for g in it.findall(q(XMPPClient.NS_ROSTER, "group"))),
            }
        return out

    def is_roster_push(self, el, jid=None):
        if el.tag != IQ_TAG or el.get("type") != "set":
            return False
        query = el.find(q(self.NS_ROSTER, "query"))
        if query is None:
            return False
        if jid is None:
            return True
        return any(i.get("jid") == jid for i in query.findall(q(self.NS_ROSTER, "item")))

    def wait_roster_push(self, jid, predicate=None, timeout=None):
        """The next roster push about `jid` (whose item dict satisfies predicate, if given);
        it is acknowledged with an iq result. Returns (iq, item dict)."""
        def pred(e):
            if not self.is_roster_push(e, jid):
                return False
            item = self.roster_items(e.find(q(self.NS_ROSTER, "query")))[jid]
            return predicate is None or predicate(item)
        push = self.im_wait(pred, timeout, "roster push for %s" % jid)
        if push.get("id") is not None:
            self.send("<iq type='result' id=%s/>" % quoteattr(push.get("id")))
        return push, self.roster_items(push.find(q(self.NS_ROSTER, "query")))[jid]


def body_of(el):
    return el.findtext(q(NS_CLIENT, "body"))

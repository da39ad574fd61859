"""The limits an operator sets against abuse (README.md, "Limits"): each one is hit here,
the offender gets the error the RFCs name, and everyone else is still served.

Loopback clients can come from any 127.x.y.z address, so the per-address limits are shown
with one address over its limit while another is untouched."""

import base64
import select
import socket
import ssl
import time

import pytest

from conftest import free_port, read_log
from test_im_helpers import configured_stack
from xmpp_client import (NS_SASL, NS_STREAMS_ERR, STREAM_ERROR_TAG, ScramClient, StreamParser,
                         XMPPClient, b64, child_conditions, dump, q, stanza_error_condition)

PER_ADDRESS_OFF = {"max_connections_per_ip": 0, "connection_rate_per_ip": 0,
                   "auth_failures_per_ip": 0}


def connect(stack, port, source=None, timeout=5.0):
    return XMPPClient(port, cafile=stack.cafile, timeout=timeout, source=source)


def assert_serving(stack, port, user, source=None):
    """A full login and a ping on `port` (from `source`) work."""
    c = connect(stack, port, source)
    try:
        c.login(user.localpart, user.password)
        assert c.ping().get("type") == "result"
    finally:
        c.close()


# ------------------------------------------------------------ connections per address
def test_connections_per_address(stack, extra_frontend, new_user):
    fe = extra_frontend(max_connections_per_ip=3, connection_rate_per_ip=0)
    held = [connect(stack, fe.port, "127.0.0.5") for _ in range(3)]
    for c in held:
        c.open_stream()
    over = connect(stack, fe.port, "127.0.0.5")
    err = over.expect_stream_error("policy-violation")
    assert "address" in dump(err)
    # Another address is not affected, nor are the connections already open.
    assert_serving(stack, fe.port, new_user(), "127.0.0.6")
    held[0].starttls()
    # Once one closes, the address may connect again.
    held[1].close()
    deadline = time.monotonic() + 5
    while True:
        c = connect(stack, fe.port, "127.0.0.5")
        try:
            c.open_stream()
            break
        except Exception:  # noqa: BLE001 - the close may not have been seen yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            c.close()
    for c in held:
        c.close()


def test_connection_rate_per_address(stack, extra_frontend, new_user):
    fe = extra_frontend(max_connections_per_ip=0, connection_rate_per_ip=1,
                        connection_burst_per_ip=3)
    for _ in range(3):
        c = connect(stack, fe.port, "127.0.0.9")
        c.open_stream()
        c.close()
    c = connect(stack, fe.port, "127.0.0.9")
    err = c.expect_stream_error("policy-violation")
    assert "slow down" in dump(err)
    assert_serving(stack, fe.port, new_user(), "127.0.0.10")
    # The bucket refills at one connection per second.
    time.sleep(1.5)
    c = connect(stack, fe.port, "127.0.0.9")
    c.open_stream()
    c.close()


# ------------------------------------------------------------ slowloris deadlines
def test_stream_open_deadline(stack, extra_frontend, new_user):
    fe = extra_frontend(stream_open_timeout=1)
    silent = connect(stack, fe.port)
    slow = connect(stack, fe.port)
    # A header that never ends: one byte now and then.
    for ch in b"<?xml version='1.0'?><stream:str":
        slow.send_raw(bytes([ch]))
    # A client that keeps up meanwhile is fine.
    assert_serving(stack, fe.port, new_user())
    silent.expect_stream_error("connection-timeout", timeout=5)
    slow.expect_stream_error("connection-timeout", timeout=5)


def test_stream_open_deadline_covers_the_tls_handshake(stack, extra_frontend):
    # On the direct TLS port (XEP-0368) a client that never starts its TLS handshake is
    # closed by the same deadline (no stream error can be sent before TLS).
    tls_port = free_port()
    fe = extra_frontend(stream_open_timeout=1, c2s_tls_listen="127.0.0.1:%d" % tls_port)
    s = socket.create_connection(("127.0.0.1", tls_port), timeout=8)
    start = time.monotonic()
    assert s.recv(4096) == b""
    assert time.monotonic() - start < 8
    s.close()
    assert fe.proc.poll() is None


def test_authentication_deadline(stack, extra_frontend, new_user):
    fe = extra_frontend(auth_timeout=2, stream_open_timeout=1)
    c = connect(stack, fe.port)
    c.open_stream()
    c.starttls()
    # The stream is open (stream_open_timeout is met), authentication never comes.
    c.expect_stream_error("connection-timeout", timeout=6)
    assert_serving(stack, fe.port, new_user())


# ------------------------------------------------------------ failed authentication
def sasl_outcome(c, el):
    if el.tag == q(NS_SASL, "success"):
        return "success"
    assert el.tag == q(NS_SASL, "failure"), dump(el)
    text = el.find(q(NS_SASL, "text"))
    return (c.failure_condition(el), text.text if text is not None else "")


def auth_result(stack, port, localpart, password, source=None):
    """'success' or (condition, text) of the SASL failure."""
    c = connect(stack, port, source)
    try:
        c.open_stream()
        c.starttls()
        sc = ScramClient(localpart, password, "SHA-256")
        c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
               % (NS_SASL, b64(sc.client_first())))
        el = c._sasl_recv(c.timeout)
        if el.tag == q(NS_SASL, "challenge"):
            server_first = base64.b64decode(el.text or "").decode()
            c.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(sc.client_final(server_first))))
            el = c._sasl_recv(c.timeout)
        return sasl_outcome(c, el)
    finally:
        c.close()


def parallel_guesses(stack, port, guesses):
    """SCRAM-SHA-256 on one connection per (localpart, password, source) at once: every
    exchange is started, and only when all have their challenge are the proofs sent
    together. Returns the outcomes ('success' or (condition, text)) in order."""
    conns, scs, outcomes = [], [], [None] * len(guesses)
    try:
        for localpart, password, source in guesses:
            c = connect(stack, port, source)
            conns.append(c)
            c.open_stream()
            c.starttls()
            sc = ScramClient(localpart, password, "SHA-256")
            scs.append(sc)
            c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
                   % (NS_SASL, b64(sc.client_first())))
        finals = []
        for i, c in enumerate(conns):
            el = c._sasl_recv(c.timeout)
            if el.tag == q(NS_SASL, "challenge"):
                server_first = base64.b64decode(el.text or "").decode()
                finals.append((i, scs[i].client_final(server_first)))
            else:
                outcomes[i] = sasl_outcome(c, el)
        for i, msg in finals:
            conns[i].send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(msg)))
        for i, _ in finals:
            outcomes[i] = sasl_outcome(conns[i], conns[i]._sasl_recv(conns[i].timeout))
    finally:
        for c in conns:
            c.close()
    return outcomes


def test_failed_authentications_per_address(stack, extra_frontend, new_user):
    fe = extra_frontend(auth_failures_per_ip=3, auth_backoff=2, max_connections_per_ip=0,
                        connection_rate_per_ip=0)
    u = new_user()
    for _ in range(3):
        assert auth_result(stack, fe.port, u.localpart, "wrong", "127.0.0.7")[0] == "not-authorized"
    # Locked: even the right password is not tried from that address now.
    cond, text = auth_result(stack, fe.port, u.localpart, u.password, "127.0.0.7")
    assert cond == "temporary-auth-failure" and "address" in text, (cond, text)
    # The account is fine from elsewhere.
    assert auth_result(stack, fe.port, u.localpart, u.password, "127.0.0.8") == "success"
    # After the back-off the address may try again.
    time.sleep(2.3)
    assert auth_result(stack, fe.port, u.localpart, u.password, "127.0.0.7") == "success"


def test_failed_authentications_per_account(stack):
    with configured_stack(stack, auth_failures_per_account=3, auth_backoff=2,
                          **PER_ADDRESS_OFF) as ps:
        port = ps.frontend.port
        victim, other = ps.new_user("victim"), ps.new_user("other")
        # A success ends a run of failures: two, a login, two more do not lock.
        for i in range(2):
            assert auth_result(stack, port, victim.localpart, "x%d" % i)[0] == "not-authorized"
        assert auth_result(stack, port, victim.localpart, victim.password) == "success"
        for i in range(2):
            assert auth_result(stack, port, victim.localpart, "y%d" % i)[0] == "not-authorized"
        assert auth_result(stack, port, victim.localpart, victim.password) == "success"
        # Guesses spread over addresses still count against the account.
        for i in range(3):
            r = auth_result(stack, port, victim.localpart, "guess%d" % i, "127.0.1.%d" % (i + 1))
            assert r[0] == "not-authorized", r
        cond, text = auth_result(stack, port, victim.localpart, victim.password, "127.0.1.9")
        assert cond == "temporary-auth-failure" and "account" in text, (cond, text)
        # Other accounts are not affected.
        assert auth_result(stack, port, other.localpart, other.password) == "success"
        # An account that does not exist locks the same way: no hint of which exist.
        for i in range(3):
            assert auth_result(stack, port, "ghost-x", "g%d" % i)[0] == "not-authorized"
        assert auth_result(stack, port, "ghost-x", "g")[0] == "temporary-auth-failure"
        time.sleep(2.3)
        assert auth_result(stack, port, victim.localpart, victim.password) == "success"


def test_parallel_guesses_from_one_address_are_bounded(stack, extra_frontend, new_user):
    """Proofs sent at once over many connections: the address's lock-out is checked again
    just before each password is checked, so no more than auth_failures_per_ip are tried."""
    fe = extra_frontend(auth_failures_per_ip=3, auth_backoff=30, max_connections_per_ip=0,
                        connection_rate_per_ip=0)
    u = new_user()
    # Different accounts (unknown ones), so that only the address's count matters.
    tag = "%x" % int(time.time() * 1000)
    outcomes = parallel_guesses(
        stack, fe.port, [("par-%s-%d" % (tag, i), "wrong", "127.0.0.11") for i in range(8)])
    tried = [o for o in outcomes if o != "success" and o[0] == "not-authorized"]
    locked = [o for o in outcomes if o != "success" and o[0] == "temporary-auth-failure"]
    assert len(tried) == 3 and len(locked) == 5, outcomes
    assert all("address" in o[1] for o in locked), outcomes
    assert_serving(stack, fe.port, u, "127.0.0.12")


def test_parallel_guesses_on_one_account_are_bounded(stack):
    """Guesses at one account sent at once over many connections and addresses: the router
    counts each credential request, so no more than auth_failures_per_account are tried."""
    with configured_stack(stack, auth_failures_per_account=3, auth_backoff=30,
                          **PER_ADDRESS_OFF) as ps:
        port = ps.frontend.port
        victim, other = ps.new_user("victim"), ps.new_user("other")
        outcomes = parallel_guesses(
            stack, port, [(victim.localpart, "g%d" % i, "127.0.2.%d" % (i + 1)) for i in range(8)])
        tried = [o for o in outcomes if o != "success" and o[0] == "not-authorized"]
        locked = [o for o in outcomes if o != "success" and o[0] == "temporary-auth-failure"]
        assert len(tried) == 3 and len(locked) == 5, outcomes
        assert all("account" in o[1] for o in locked), outcomes
        assert auth_result(stack, port, other.localpart, other.password) == "success"


# ------------------------------------------------------------ bytes per second
def test_bytes_per_second_per_connection(stack, extra_frontend, new_user):
    fe = extra_frontend(max_bytes_per_second=8192)
    fast_user, slow_user = new_user(), new_user()
    flooder = connect(stack, fe.port)
    flooder.login(slow_user.localpart, slow_user.password)
    bystander = connect(stack, fe.port)
    bystander.login(fast_user.localpart, fast_user.password)
    # 40 KiB of messages to itself, then a ping: at 8 KiB/s the ping cannot be read before
    # about four seconds have passed.
    body = "x" * 4000
    start = time.monotonic()
    for i in range(10):
        flooder.send("<message to='%s' type='normal' id='f%d'><body>%s</body></message>"
                     % (flooder.jid, i, body))
    flooder.send("<iq type='get' id='late'><ping xmlns='urn:xmpp:ping'/></iq>")
    # Meanwhile the other connection on the same frontend is served at once.
    assert bystander.ping().get("type") == "result"
    bystander_done = time.monotonic() - start
    flooder.wait_for(lambda e: e.get("id") == "late" and e.get("type") == "result",
                     timeout=30, what="the ping behind the flood")
    took = time.monotonic() - start
    assert took >= 3.0, "40 KiB at 8 KiB/s were read in %.2f s" % took
    assert bystander_done < took


# ------------------------------------------------------------ stanza size and depth before authentication
def test_smaller_stanza_limit_before_authentication(stack, extra_frontend, new_user):
    fe = extra_frontend(max_stanza_size_preauth=2048)
    c = connect(stack, fe.port)
    c.open_stream()
    c.send_raw(("<iq type='get' id='big'><query xmlns='jabber:iq:version'>%s</query></iq>"
                % ("y" * 4096)).encode())
    c.expect_stream_error("policy-violation")
    # After authentication the usual max_stanza_size applies.
    u = new_user()
    c = connect(stack, fe.port)
    c.login(u.localpart, u.password)
    c.send("<message to='%s' id='big'><body>%s</body></message>" % (c.jid, "y" * 4096))
    m = c.wait_for(lambda e: e.get("id") == "big", what="the 4 KiB message to itself")
    assert len(m.findtext("{jabber:client}body")) == 4096


def test_smaller_depth_limit_before_authentication(stack, extra_frontend, new_user):
    fe = extra_frontend(max_depth_preauth=5)
    nested = "<a>" * 8 + "</a>" * 8
    c = connect(stack, fe.port)
    c.open_stream()
    c.send_raw(("<iq type='get' id='deep'><x xmlns='urn:t'>%s</x></iq>" % nested).encode())
    c.expect_stream_error("policy-violation")
    u = new_user()
    c = connect(stack, fe.port)
    c.login(u.localpart, u.password)
    c.send("<message to='%s' id='deep'><x xmlns='urn:t'>%s</x></message>" % (c.jid, nested))
    c.wait_for(lambda e: e.get("id") == "deep", what="the nested message to itself")


# ------------------------------------------------------------ resources per account
def test_resources_per_account(stack):
    with configured_stack(stack, max_resources=2) as ps:
        u = ps.new_user("res")
        port = ps.frontend.port
        a, b, c = (connect(stack, port) for _ in range(3))
        a.login(u.localpart, u.password, resource="one")
        b.login(u.localpart, u.password, resource="two")
        c.open_stream()
        c.starttls()
        assert c.auth(u.localpart, u.password) == "success"
        res = c.iq("set", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                          "<resource>three</resource></bind>")
        # RFC 6120 7.6.2.1: resource-constraint, type wait.
        assert res.get("type") == "error", dump(res)
        assert stanza_error_condition(res) == ("wait", "resource-constraint"), dump(res)
        # Binding a resource in use again replaces that session: no new one.
        d = connect(stack, port)
        d.login(u.localpart, u.password, resource="two")
        b.expect_stream_error("conflict")
        # When one goes, a place is free.
        a.end_stream()
        deadline = time.monotonic() + 5
        while True:
            res = c.iq("set", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                              "<resource>three</resource></bind>")
            if res.get("type") == "result" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert res.get("type") == "result", dump(res)
        assert d.ping().get("type") == "result"


# ------------------------------------------------------------ stream errors while the client sends
# A stream error that ends a stream while the client is still sending (here: a stanza far
# over the limit) must be read by the client, not lost to a TCP reset: the frontend writes
# it, shuts its write side, and reads and discards what still comes for a bounded time
# before it closes ("lingering close", c2s-frontend/client.c).
LINGER_S = 2.0  # LINGER_MS in c2s-frontend/client.h
FLOOD = 2 * 1024 * 1024


def send_while_reading(c, data, timeout=30.0):
    """Writes all of `data` as one sendall() would (in order, to the end), but without
    blocking, so that what the server sends meanwhile is read as it comes; then reads on
    to the end of the connection. Returns (received bytes, bytes written, error of the
    writes or None, 'eof' or the error the reads ended with). Closes the client."""
    s = c.sock
    s.setblocking(False)
    received = bytearray()
    pos, send_error, ended = 0, None, None
    deadline = time.monotonic() + timeout
    try:
        while ended is None or (pos < len(data) and send_error is None):
            if time.monotonic() > deadline:
                raise AssertionError("after %.0fs: %d of %d bytes written, read: %s; %r"
                                     % (timeout, pos, len(data), ended, bytes(received[-300:])))
            writing = pos < len(data) and send_error is None
            reading = ended is None
            if reading and isinstance(s, ssl.SSLSocket) and s.pending():
                r, w = [s], []
            else:
                r, w, _ = select.select([s] if reading else [], [s] if writing else [], [], 0.2)
            if r:
                try:
                    got = s.recv(65536)
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                        ssl.SSLWantWriteError):
                    got = None
                except OSError as e:  # ECONNRESET: what this is about
                    ended = e
                    got = None
                if got == b"":
                    ended = "eof"
                elif got:
                    received += got
            if w:
                try:
                    # One TLS record at a time: a retried SSL_write must offer the same bytes.
                    pos += s.send(data[pos:pos + 16384])
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError,
                        ssl.SSLWantReadError):
                    pass
                except OSError as e:
                    send_error = e
    finally:
        c.close()
    return bytes(received), pos, send_error, ended


def stream_error_and_close(received):
    """The conditions of the stream errors in `received` (a stream's continuation, parsed
    from a stream header of our own) and whether </stream:stream> followed the last."""
    p = StreamParser()
    p.feed(b"<stream:stream xmlns='jabber:client' "
           b"xmlns:stream='http://etherx.jabber.org/streams'>")
    p.feed(received)
    conds, closed = [], False
    for ev in p.events:
        if ev[0] == "element" and ev[1].tag == STREAM_ERROR_TAG:
            conds += [x for x in child_conditions(ev[1], NS_STREAMS_ERR) if x != "text"]
            closed = False
        elif ev[0] == "end":
            closed = True
    return conds, closed


@pytest.mark.parametrize("phase", ["auth", "preauth"])
@pytest.mark.parametrize("transport", ["starttls", "plain"])
def test_stream_error_reaches_a_client_still_sending(stack, extra_frontend, new_user, transport,
                                                     phase):
    """20 times in a row: a client sends a 2 MiB stanza in one go (max_stanza_size is
    256 KiB; 16 KiB before authentication) and reads while it sends. It must read the
    policy-violation stream error and the stream's end, then a clean end of the
    connection, and its whole write must go through (the server reads on and discards)
    rather than end in a reset."""
    fe = extra_frontend(require_tls="false", max_stanza_size=256 * 1024,
                        max_stanza_size_preauth=16 * 1024, max_bytes_per_second=0)
    u = new_user("flood") if phase == "auth" else None
    tls = transport == "starttls"
    for i in range(20):
        c = connect(stack, fe.port)
        if phase == "auth":
            c.login(u.localpart, u.password, resource="flood%d" % i, tls=tls)
            head = "<message to='%s' type='chat' id='big'><body>" % c.jid
            filler = b"x"
        else:
            c.open_stream()
            if tls:
                c.starttls()
            head = "<auth xmlns='%s' mechanism='PLAIN'>" % NS_SASL
            filler = b"QUFB"
        data = head.encode() + filler * ((FLOOD - len(head)) // len(filler))
        received, written, send_error, ended = send_while_reading(c, data)
        conds, closed = stream_error_and_close(received)
        what = "round %d (%s, %s): read %d bytes ending %r" % (i + 1, transport, phase,
                                                              len(received), received[-300:])
        assert ended == "eof", "%s; the reads ended with %r, not a clean end" % (what, ended)
        assert conds == ["policy-violation"] and closed, \
            "%s; stream errors %s, </stream:stream> after it: %s" % (what, conds, closed)
        assert send_error is None and written == len(data), \
            "%s; %d of %d bytes written, then %r" % (what, written, len(data), send_error)
    assert fe.proc.poll() is None


def test_lingering_close_is_bounded(stack, extra_frontend, login, new_user):
    """Two peers get a stream error and never close: one trickles a few bytes now and then,
    one sends as fast as it can without ever reading. Each is cut off (its writes fail:
    the frontend closed the socket) after at most the lingering bound, and the frontend
    serves its other clients meanwhile."""
    fe = extra_frontend(require_tls="false", max_stanza_size_preauth=16 * 1024,
                        max_bytes_per_second=0)
    by = login(new_user("lgby"), resource="by", port=fe.port, tls=False)
    trickler, flooder = connect(stack, fe.port), connect(stack, fe.port)
    for c in (trickler, flooder):
        c.open_stream()
    big = ("<auth xmlns='%s' mechanism='PLAIN'>" % NS_SASL + "QUFB" * 8192).encode()
    trickler.send_raw(big)
    trickler.expect_stream_error("policy-violation")  # error, </stream:stream>, EOF
    flooder.send_tolerant(big)
    start = time.monotonic()
    trickler.sock.setblocking(False)
    flooder.sock.setblocking(False)
    cut = {}
    flood = b"F" * 65536
    next_trickle = next_ping = start
    while len(cut) < 2:
        now = time.monotonic()
        assert now - start < LINGER_S + 5, \
            "still connected %.1fs after the stream error: %s" % (now - start, sorted(
                {"trickler", "flooder"} - set(cut)))
        if "trickler" not in cut and now >= next_trickle:
            next_trickle = now + 0.1
            try:
                trickler.sock.send(b"t" * 100)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                cut["trickler"] = now - start
        if "flooder" not in cut:
            try:
                flooder.sock.send(flood)
            except (BlockingIOError, InterruptedError):
                select.select([], [flooder.sock], [], 0.01)
            except OSError:
                cut["flooder"] = now - start
        else:
            time.sleep(0.01)
        if now >= next_ping:
            next_ping = now + 0.5
            # The frontend is not held up by the lingering connections.
            assert by.ping(timeout=2).get("type") == "result"
    # The trickler is cut off by the time bound (not at once: the frontend read on), the
    # flooder by the time or the byte bound.
    print("cut off after (s):", cut)
    assert LINGER_S - 0.5 <= cut["trickler"] <= LINGER_S + 2, cut
    assert cut["flooder"] <= LINGER_S + 2, cut
    trickler.close()
    flooder.close()
    log = read_log(fe.log)
    assert "without the peer closing" in log, log[-3000:]
    assert by.ping().get("type") == "result"
    fresh = connect(stack, fe.port)
    u = new_user()
    fresh.login(u.localpart, u.password, tls=False)
    assert fresh.ping().get("type") == "result"
    fresh.close()
    assert fe.proc.poll() is None


def test_shutdown_does_not_wait_for_lingering_connections(stack, extra_frontend):
    """SIGTERM while connections linger (plain and TLS, their peers never close): the
    frontend closes them and exits at once, cleanly (no leak reports, under sanitizers or
    valgrind either)."""
    fe = extra_frontend(require_tls="false", max_stanza_size_preauth=16 * 1024)
    big = ("<auth xmlns='%s' mechanism='PLAIN'>" % NS_SASL + "QUFB" * 8192).encode()
    held = []
    for tls in (False, True):
        c = connect(stack, fe.port)
        c.open_stream()
        if tls:
            c.starttls()
        c.send_raw(big)
        c.expect_stream_error("policy-violation")
        held.append(c)
    start = time.monotonic()
    status = fe.terminate()
    took = time.monotonic() - start
    for c in held:
        c.close()
    assert status == 0, "exit status %s after SIGTERM" % status
    assert took < LINGER_S, "exit took %.1fs: shutdown waited for lingering connections" % took

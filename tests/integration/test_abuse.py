"""Abuse: one misbehaving client (or a stranger on the router's ZeroMQ port) ends only
itself. In every test a bystander pair logged in beforehand still answers a ping and
exchanges messages afterwards, a fresh login works, the offender gets the RFC 6120 stream
error that applies (section 4.9.3), and the resident memory (VmRSS in /proc/PID/status) of
the frontend and the router stays within a bound derived from the configured limits.

Frontends are started per test with small limits (extra_frontend) so that the tests are
fast. Loopback clients all come from 127.0.0.1, but any 127.x.y.z source address works on
Linux: the tests use that to act as many client addresses.

Memory bounds (measured peak VmRSS minus VmRSS just before the abuse, sampled every 5 ms;
none is checked under valgrind or AddressSanitizer, whose own memory dominates VmRSS; the
abuse still runs there):
- SLACK_KB (6 MiB) covers allocator noise: glibc's arenas for the main and the ZeroMQ I/O
  threads, OpenSSL's per-connection state, libzmq's 8 KiB decoder buffers and message
  pipes. Measured: +2.4 MiB for the frontend in the slow-reader test (6 MB relayed),
  +3.9 MiB in the throttled 100k test, under +0.3 MiB in the stanza and DTD tests.
- One client's queued output is at most max_output_buffer, plus the replies to the last
  chunk read (READ_CHUNK, 16 KiB), and a byte buffer grows by doubling, so it may hold
  twice its length: 2 x max_output_buffer + 2 x READ_CHUNK.
- One stanza being parsed is at most max_stanza_size (max_stanza_size_preauth before
  authentication) in the parser's text, plus expat's own buffer of the unparsed token,
  which grows by doubling too: 4 x max_stanza_size. Its tree (nodes, names, namespace
  URIs) is bounded apart, at TREE_FACTOR x max_stanza_size (common/xml.c), which only a
  stanza built for it (a long namespace on many small elements) comes near.
- An idle connection costs its client_t, its expat parser and its address-limit entry
  (the kernel's socket buffers are not in RSS): PER_CONN_KB (16 KiB); measured 400 idle
  connections at +4.2 MiB, about 10 KiB each.
- A frame on the router's port is held whole while it is read; the largest legitimate one
  carries a stanza of the largest max_stanza_size (16 MiB).
"""

import concurrent.futures
import os
import random
import select
import socket
import struct
import threading
import time
import uuid

import pytest

from conftest import VALGRIND, build_dir, read_log
from test_im_helpers import configured_stack
from xmpp_client import (NS_SASL, NS_STREAMS_ERR, STREAM_ERROR_TAG, StreamClosed, XMPPClient,
                         child_conditions, dump)

KB = 1024
SLACK_KB = 6 * 1024
PER_CONN_KB = 16
TREE_FACTOR = 32   # XML_TREE_FACTOR in common/xml.c
READ_CHUNK = 16 * 1024
# link_hwm of the private stacks of the flood tests: what a process may hold queued on the
# frontend-router link when the other end falls behind, at most LINK_MSG_KB per ZeroMQ
# message: a batch of what one loop pass sent (under 16 KiB; docs/PROTOCOL.md "Batches").
# 300 batches: about as much as 10,000 single stanzas of the flood held before batches,
# so that what waits for the router ahead of a bystander stays as short.
LINK_HWM = 300
LINK_MSG_KB = 16
LINK_KB = int(LINK_HWM * LINK_MSG_KB)

# Limits that other tests' keys would otherwise add to the picture: every test switches off
# what it does not exercise, so that it depends on nothing but its own keys.
NO_LIMITS = {"max_connections_per_ip": 0, "connection_rate_per_ip": 0,
             "max_bytes_per_second": 0}

UTF8_ERRORS = {"not-well-formed", "unsupported-encoding"}   # RFC 6120 4.9.3.13 / 4.9.3.22


# ------------------------------------------------------------------ memory
def _sanitized():
    """Whether the servers are built with AddressSanitizer (make SAN=1): its shadow memory
    and the quarantine of freed blocks (256 MiB by default) make VmRSS say nothing about
    what the server itself holds."""
    try:
        return b"__asan_init" in (build_dir() / "c2s-frontend").read_bytes()
    except OSError:
        return False


SANITIZED = _sanitized()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


class RssMonitor:
    """Samples VmRSS of some processes every 5 ms in a thread; growth = peak - baseline."""

    def __init__(self, **pids):
        self.pids = pids
        self.base = {}
        self.peak = {}
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        for name, pid in self.pids.items():
            self.base[name] = self.peak[name] = rss_kb(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        for name, pid in self.pids.items():
            try:
                v = rss_kb(pid)
            except (OSError, RuntimeError):
                continue
            if v > self.peak[name]:
                self.peak[name] = v

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(0.005)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        self._sample()
        return self

    def growth(self, name):
        return self.peak[name] - self.base[name]

    def report(self):
        return ", ".join("%s %d KiB -> peak %d KiB (+%d)" % (n, self.base[n], self.peak[n],
                                                           self.growth(n)) for n in self.pids)

    def check(self, name, bound_kb, why):
        """Asserts growth <= bound_kb (not under valgrind or AddressSanitizer, whose own
        memory is in VmRSS)."""
        g = self.growth(name)
        print("RSS %s: +%d KiB (bound %d KiB: %s) [%s]" % (name, g, bound_kb, why, self.report()))
        if VALGRIND or SANITIZED:
            return
        assert g <= bound_kb, ("%s grew by %d KiB, more than the %d KiB bound (%s); %s"
                               % (name, g, bound_kb, why, self.report()))


# ------------------------------------------------------------------ clients
def source_addr(block, i):
    """A distinct loopback source address: 127.<block>.<i / 250>.<i % 250 + 1>."""
    return "127.%d.%d.%d" % (block, i // 250, i % 250 + 1)


def plain_login(port, user, resource=None, source=None, timeout=5.0):
    """Login without TLS (the frontend runs with require_tls=false): SCRAM, bind."""
    c = XMPPClient(port, timeout=timeout, source=source)
    try:
        c.login(user.localpart, user.password, resource=resource, tls=False)
    except BaseException:
        c.close()
        raise
    return c


class Bystanders:
    """Two sessions logged in before the abuse; check() after it: both answer pings and
    exchange a message each way."""

    def __init__(self, login, new_user, port, tls=True):
        self.a = login(new_user("bya"), resource="bystander-a", port=port, tls=tls)
        self.b = login(new_user("byb"), resource="bystander-b", port=port, tls=tls)

    def check(self, timeout=None):
        for c in (self.a, self.b):
            # While the server still digests a flood it may shed load with an error of type
            # wait (resource-constraint: the link to the router is full), which RFC 6120
            # 8.3.2 tells a client to retry later; a bystander must be served again soon
            # after, and never be disconnected.
            deadline = time.monotonic() + (60 if VALGRIND else 15)
            while True:
                res = c.ping(timeout=timeout)
                err = res.find("{jabber:client}error")
                if (res.get("type") == "result" or err is None or err.get("type") != "wait"
                        or time.monotonic() > deadline):
                    break
                time.sleep(0.5)
            assert res.get("type") == "result", dump(res)
        for src, dst in ((self.a, self.b), (self.b, self.a)):
            token = "by-" + uuid.uuid4().hex[:8]
            src.message(dst.jid, token)
            m = dst.wait_message(token, timeout=timeout)
            assert m.get("from") == src.jid, dump(m)


def fresh_login_works(login, new_user, port, tls=True):
    c = login(new_user("fresh"), resource="fresh", port=port, tls=tls)
    assert c.ping().get("type") == "result"
    c.close()


def try_stream(port, source=None, timeout=2.0):
    """Connects (from `source`) and opens a stream. ('open', client) when the server
    answered with its header and features; ('refused: ...', None) when it closed the
    connection, reset it, sent a stream error or did not answer."""
    try:
        c = XMPPClient(port, timeout=timeout, source=source)
    except OSError as e:
        return "refused: connect: %r" % e, None
    try:
        c.open_stream(timeout=timeout)
        return "open", c
    except (AssertionError, StreamClosed, TimeoutError, OSError) as e:
        c.close()
        return "refused: %s" % str(e).split(";")[0][:120], None


def stream_error_condition(c, timeout):
    """Reads to the end: the stream error condition ('' when the server closed the
    connection without one); raises AssertionError when it stays open."""
    try:
        el = c.wait_for(lambda e: e.tag == STREAM_ERROR_TAG, timeout, "stream error")
    except AssertionError as e:
        if "closed" in str(e) or "</stream:stream>" in str(e):
            return ""
        raise
    conds = [x for x in child_conditions(el, NS_STREAMS_ERR) if x != "text"]
    c.assert_closed(timeout)
    return conds[0] if len(conds) == 1 else repr(conds)


def send_until_answered(c, head, chunk, total):
    """Sends head, then `chunk` repeatedly up to `total` bytes, stopping as soon as the
    server has sent something (its error) or stopped taking data. Returns bytes sent."""
    sent = 0
    if not c.send_tolerant(head):
        return sent
    while sent < total:
        pending = c.sock.pending() if hasattr(c.sock, "pending") else 0
        r, _, _ = select.select([c.sock], [], [], 0)
        if r or pending:
            break
        if not c.send_tolerant(chunk):
            break
        sent += len(chunk)
    return sent


def pump(c, data, drain=True, stall_after=None, deadline=60.0):
    """Writes `data` on the plain socket of `c` without blocking, parsing what the server
    sends meanwhile (drain) or never reading (drain=False). Returns ('completed' | 'stalled'
    | 'disconnected', bytes written); 'stalled' when nothing could be written for
    stall_after seconds."""
    s = c.sock
    s.setblocking(False)
    pos, last = 0, time.monotonic()
    end = time.monotonic() + deadline
    try:
        while pos < len(data):
            if time.monotonic() > end:
                raise AssertionError("pump: %d of %d bytes written in %.0fs"
                                     % (pos, len(data), deadline))
            r, w, _ = select.select([s] if drain else [], [s], [], 0.2)
            if r:
                try:
                    got = s.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    got = None
                except OSError:
                    return "disconnected", pos
                if got == b"":
                    return "disconnected", pos
                if got:
                    c.parser.feed(got)
                    c.parser.events.clear()
            if w:
                try:
                    n = s.send(data[pos:pos + (1 << 16)])
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:
                    return "disconnected", pos
                if n:
                    pos += n
                    last = time.monotonic()
            if stall_after is not None and time.monotonic() - last > stall_after:
                return "stalled", pos
        return "completed", pos
    finally:
        s.setblocking(True)
        s.settimeout(c.timeout)


# ------------------------------------------------------------------ connection floods
def test_connection_flood_from_one_address_is_cut_off(stack, extra_frontend, login, new_user):
    per_ip = 8
    fe = extra_frontend(require_tls="false", max_connections_per_ip=per_ip,
                        connection_rate_per_ip=0, max_bytes_per_second=0)
    by = Bystanders(login, new_user, fe.port, tls=False)
    mon = RssMonitor(frontend=fe.proc.pid).start()
    held, results = [], []
    try:
        for _ in range(60):
            r, c = try_stream(fe.port, source="127.0.0.2")
            results.append(r)
            if c is not None:
                held.append(c)
        opened = results.count("open")
        assert opened == per_ip, "max_connections_per_ip=%d, but %d of 60 streams from one " \
            "address opened: %s" % (per_ip, opened, sorted(set(results)))
        # While that address is held at its limit, other addresses get in and log in.
        other = plain_login(fe.port, new_user("other"), source="127.0.0.3")
        assert other.ping().get("type") == "result"
        other.close()
        by.check()
        fresh_login_works(login, new_user, fe.port, tls=False)
    finally:
        for c in held:
            c.close()
    # The flood's connections are gone: the address may connect again.
    deadline = time.monotonic() + 3
    while True:
        r, c = try_stream(fe.port, source="127.0.0.2")
        if c is not None:
            c.close()
            break
        assert time.monotonic() < deadline, "127.0.0.2 still refused after its connections " \
            "closed: %s" % r
        time.sleep(0.1)
    mon.stop().check("frontend", SLACK_KB + 60 * PER_CONN_KB,
                     "60 short connections, %d held" % per_ip)
    assert fe.proc.poll() is None


def test_connection_rate_per_address(stack, extra_frontend, login, new_user):
    rate, burst = 5, 10
    fe = extra_frontend(require_tls="false", connection_rate_per_ip=rate,
                        connection_burst_per_ip=burst, max_connections_per_ip=0,
                        max_bytes_per_second=0)
    by = Bystanders(login, new_user, fe.port, tls=False)
    t0 = time.monotonic()
    results = []
    for _ in range(40):
        r, c = try_stream(fe.port, source="127.0.0.4")
        results.append(r)
        if c is not None:
            c.close()
    elapsed = time.monotonic() - t0
    opened = results.count("open")
    # A token bucket: the burst at once, then `rate` per second.
    assert burst <= opened <= burst + rate * elapsed + 1, \
        "rate %d/s burst %d: %d of 40 connections in %.1fs opened: %s" \
        % (rate, burst, opened, elapsed, sorted(set(results)))
    assert opened < 40
    # Another address is not affected.
    r, c = try_stream(fe.port, source="127.0.0.5")
    assert c is not None, r
    c.close()
    by.check()
    fresh_login_works(login, new_user, fe.port, tls=False)
    # The bucket refills: after 1/rate seconds (and some) one more is allowed.
    time.sleep(1.0 / rate + 0.3)
    r, c = try_stream(fe.port, source="127.0.0.4")
    assert c is not None, "no connection from 127.0.0.4 after the bucket refilled: %s" % r
    c.close()


def test_max_connections_total(stack, extra_frontend, login, new_user):
    total = 12
    fe = extra_frontend(require_tls="false", max_connections=total, **NO_LIMITS)
    by = Bystanders(login, new_user, fe.port, tls=False)   # 2 of the 12
    time.sleep(0.3)   # the probe login's connection is surely closed
    held, results = [], []
    try:
        for i in range(20):
            r, c = try_stream(fe.port, source=source_addr(3, i))
            results.append(r)
            if c is not None:
                held.append(c)
        assert results.count("open") == total - 2, results
        by.check()
        # Full: a new connection is refused; one closes, and a login fits again.
        for c in held[:3]:
            c.close()
        time.sleep(0.3)
        fresh_login_works(login, new_user, fe.port, tls=False)
    finally:
        for c in held:
            c.close()


def test_idle_connection_flood_times_out(stack, extra_frontend, login, new_user):
    """Many connections that never open a stream (or stop in the middle of the header):
    closed after stream_open_timeout; memory stays within PER_CONN_KB each meanwhile."""
    n = 100 if VALGRIND else 400
    fe = extra_frontend(require_tls="false", stream_open_timeout=2, max_connections_per_ip=10,
                        connection_rate_per_ip=0, max_bytes_per_second=0)
    by = Bystanders(login, new_user, fe.port, tls=False)
    mon = RssMonitor(frontend=fe.proc.pid).start()
    socks = []
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", fe.port), timeout=5,
                                         source_address=(source_addr(4, i // 10), 0))
            if i % 2:
                s.sendall(b"<?xml version='1.0'?><stream:stream to='localhost' ver")
            socks.append(s)
        t_opened = time.monotonic()
        by.check()
        fresh_login_works(login, new_user, fe.port, tls=False)
        # Every one of them is closed by the server (a connection-timeout stream error
        # for those that started a header, or nothing).
        timeout = 2 + 5 * (10 if VALGRIND else 1)
        still = []
        for s in socks:
            s.settimeout(max(t_opened + timeout - time.monotonic(), 0.1))
            data = b""
            try:
                while True:
                    got = s.recv(65536)
                    if not got:
                        break
                    data += got
            except ConnectionResetError:
                pass
            except socket.timeout:
                still.append(s)
                continue
            if data:
                assert b"connection-timeout" in data or b"policy-violation" in data, data
        assert not still, "%d of %d idle connections still open after %.0fs" % (
            len(still), n, timeout)
    finally:
        for s in socks:
            s.close()
    by.check()
    mon.stop().check("frontend", SLACK_KB + n * PER_CONN_KB, "%d idle connections" % n)


# ------------------------------------------------------------------ slow reader
def test_slow_reader_is_disconnected_sender_unaffected(stack, extra_frontend, login, new_user):
    """A client that never reads while another sends it several MB: cut off once more than
    max_output_buffer is queued for it; the sender (throttled to 2 MB/s by
    max_bytes_per_second, so that the bytes in flight through the router stay few) goes on."""
    max_out = 256 * KB
    rate = 2 * 1024 * 1024
    fe = extra_frontend(require_tls="false", max_output_buffer=max_out,
                        max_bytes_per_second=rate, max_connections_per_ip=0,
                        connection_rate_per_ip=0)
    by = Bystanders(login, new_user, fe.port)           # TLS (STARTTLS is offered)
    slow = login(new_user("slow"), resource="slow", port=fe.port)   # TLS, then never reads
    sender = plain_login(fe.port, new_user("sender"), resource="sender")
    mon = RssMonitor(frontend=fe.proc.pid, router=stack.router.pid).start()
    # Headlines: RFC 6121 8.5.3.2.1 lets the router drop those to a resource that is gone,
    # so the sender gets no error bounced per message once the reader was cut off.
    body = "h" * 8000
    # Several times what loopback's socket buffers take in when nobody reads (the frontend
    # finds the reader too slow only once its socket refuses more).
    total_mb = 8
    one = ("<message to='%s' type='headline'><body>%s</body></message>"
           % (slow.jid, body)).encode()
    data = one * (total_mb * 1024 * 1024 // len(one))
    state, written = pump(sender, data, drain=True, deadline=120 if VALGRIND else 30)
    assert state == "completed", "the sender was %s after %d bytes" % (state, written)
    # The sender is fine: it was never cut off for the reader's sake.
    assert sender.ping(timeout=30).get("type") == "result"
    # The reader was cut off: what the kernel held reaches it, then the end.
    slow.assert_closed(timeout=10)
    mon.stop()
    by.check()
    fresh_login_works(login, new_user, fe.port)
    mon.check("frontend", SLACK_KB + 2 * max_out // KB + 2 * READ_CHUNK // KB,
              "max_output_buffer %d" % max_out)
    mon.check("router", SLACK_KB, "the router only forwards")
    assert "max_output_buffer" in read_log(fe.log)


# ------------------------------------------------------------------ 100,000 stanzas
def offender_state(c, state):
    """After pump(drain=False) 'completed': reads what is pending to tell whether the
    server has closed the connection ('disconnected') or not ('completed')."""
    if state != "completed":
        return state
    c.sock.settimeout(1.0)
    try:
        while True:
            got = c.sock.recv(1 << 20)
            if not got:
                return "disconnected"
    except (socket.timeout, TimeoutError):
        return "completed"
    except OSError:
        return "disconnected"
    finally:
        c.sock.settimeout(c.timeout)


@pytest.mark.parametrize("rate", [1024 * 1024, 0], ids=["throttled", "unthrottled"])
def test_100k_stanzas_without_reading(stack, login, rate):
    """A client writes 100,000 messages to itself and never reads the echoes: it stalls
    (the frontend stops reading it while its output is above max_output_buffer / 4) or is
    cut off; memory stays bounded, everybody else is served. 'unthrottled' switches
    max_bytes_per_second off: then nothing but the output bound holds the client back.
    A router that falls behind the frontend holds what waits on the link, at most link_hwm
    messages: a private stack with a stated link_hwm, so the router's bound is known."""
    max_out = 64 * KB
    with configured_stack(stack, require_tls="false", max_output_buffer=max_out,
                          max_bytes_per_second=rate, link_hwm=LINK_HWM) as ps:
        flood_without_reading(ps, login, max_out, rate)


def flood_without_reading(ps, login, max_out, rate):
    fe, new_user = ps.frontend, ps.new_user
    by = Bystanders(login, new_user, fe.port, tls=False)
    off = plain_login(fe.port, new_user("flood"), resource="flood")
    mon = RssMonitor(frontend=fe.proc.pid, router=ps.router.pid).start()
    # Messages to itself: each comes back through the router to the client that does not
    # read. Big enough (21 MB in all) that kernel socket buffers cannot hold them all.
    n = 100000
    filler = "y" * 120
    data = "".join("<message to='%s' type='chat' id='f%d'><body>%s</body></message>"
                   % (off.jid, i, filler) for i in range(n)).encode()
    state, written = pump(off, data, drain=False, stall_after=3.0,
                          deadline=300 if VALGRIND else 90)
    print("offender: %s after %d of %d bytes; %s" % (state, written, len(data), mon.report()))
    # Meanwhile (the offender holds its stall), everybody else is served.
    by.check()
    fresh_login_works(login, new_user, fe.port, tls=False)
    mon.stop()
    mon.check("frontend", SLACK_KB + 2 * max_out // KB + 2 * READ_CHUNK // KB + LINK_KB,
              "max_output_buffer %d, max_bytes_per_second %d, link_hwm %d"
              % (max_out, rate, LINK_HWM))
    mon.check("router", SLACK_KB + LINK_KB, "the router forwards; link_hwm %d" % LINK_HWM)
    if state == "stalled":
        # Back-pressure, not a deadlock: once the offender reads, its echoes flow again.
        got = 0
        deadline = time.monotonic() + 10
        while got < 50 and time.monotonic() < deadline:
            try:
                el = off.recv(timeout=max(deadline - time.monotonic(), 0.1))
            except (TimeoutError, StreamClosed):
                break
            if el.tag == "{jabber:client}message":
                got += 1
        assert got >= 50, "only %d echoes reached the offender once it read" % got
    else:
        state = offender_state(off, state)
        assert state == "disconnected", \
            "all %d bytes were taken from a client that never reads" % len(data)
    off.abort()
    assert fe.proc.poll() is None


# ------------------------------------------------------------------ huge stanzas
def test_huge_stanza_after_auth(stack, extra_frontend, login, new_user):
    max_stanza = 64 * KB
    fe = extra_frontend(max_stanza_size=max_stanza, **NO_LIMITS)
    by = Bystanders(login, new_user, fe.port)
    off = login(new_user("huge"), resource="huge", port=fe.port)
    mon = RssMonitor(frontend=fe.proc.pid, router=stack.router.pid).start()
    sent = send_until_answered(off, "<message to='%s' type='chat'><body>" % off.jid,
                               "x" * 65536, 64 * 1024 * 1024)
    off.expect_stream_error("policy-violation", timeout=10)
    assert sent < 64 * 1024 * 1024
    mon.stop()
    by.check()
    fresh_login_works(login, new_user, fe.port)
    mon.check("frontend", SLACK_KB + 4 * max_stanza // KB, "max_stanza_size %d" % max_stanza)
    mon.check("router", SLACK_KB, "nothing reached the router")


def test_stanza_that_serialises_past_the_link_bound(stack, extra_frontend, login, new_user):
    """A prefix bound to a long namespace, used on many small elements: a few KiB of input,
    but each element is written out with its own declaration of the namespace, so the
    stanza re-serialised is far longer than the router takes on the link. Only this
    stream ends (policy-violation); the frontend's other clients keep their link."""
    max_stanza = 64 * KB
    fe = extra_frontend(max_stanza_size=max_stanza, **NO_LIMITS)
    by = Bystanders(login, new_user, fe.port)
    off = login(new_user("nsbomb"), resource="nsbomb", port=fe.port)
    mon = RssMonitor(frontend=fe.proc.pid, router=stack.router.pid).start()
    stanza = ("<message to='%s' type='chat'><x xmlns:p='urn:%s'>%s</x></message>"
              % (off.jid, "n" * 4000, "<p:a/>" * 300))
    assert len(stanza) < max_stanza
    off.send(stanza)
    off.expect_stream_error("policy-violation", timeout=10)
    mon.stop()
    by.check()
    fresh_login_works(login, new_user, fe.port)
    mon.check("frontend", SLACK_KB + (TREE_FACTOR + 4) * max_stanza // KB,
              "max_stanza_size %d" % max_stanza)
    mon.check("router", SLACK_KB, "nothing reached the router")


@pytest.mark.parametrize("what", ["stanza", "attribute", "header-attribute", "depth"])
def test_huge_input_before_auth(stack, extra_frontend, login, new_user, what):
    pre = 4096
    fe = extra_frontend(require_tls="false", max_stanza_size=256 * KB,
                        max_stanza_size_preauth=pre, max_depth_preauth=8, **NO_LIMITS)
    by = Bystanders(login, new_user, fe.port, tls=False)
    mon = RssMonitor(frontend=fe.proc.pid).start()
    c = XMPPClient(fe.port)
    if what == "header-attribute":
        send_until_answered(c, c.stream_header()[:-1] + " junk='", "j" * 4096, 16 * 1024 * 1024)
    else:
        c.open_stream()
        if what == "stanza":
            send_until_answered(c, "<auth xmlns='%s' mechanism='PLAIN'>" % NS_SASL,
                                "QUFB" * 1024, 16 * 1024 * 1024)
        elif what == "attribute":
            send_until_answered(c, "<auth xmlns='%s' mechanism='" % NS_SASL, "P" * 4096,
                                16 * 1024 * 1024)
        else:
            c.send_tolerant("<auth xmlns='%s' mechanism='PLAIN'>%s"
                            % (NS_SASL, "<x>" * 20))
    # Only 4 KiB (8 levels) may be in flight before authentication; 256 KiB after it.
    c.expect_stream_error("policy-violation", timeout=10)
    c.close()
    mon.stop()
    by.check()
    fresh_login_works(login, new_user, fe.port, tls=False)
    mon.check("frontend", SLACK_KB + 4 * pre // KB, "max_stanza_size_preauth %d" % pre)


# ------------------------------------------------------------------ billion laughs / DTDs
LOL = ("<!DOCTYPE stream:stream [<!ENTITY a0 'lol'>" + "".join(
    "<!ENTITY a%d '%s'>" % (i, ("&a%d;" % (i - 1)) * 10) for i in range(1, 10)) + "]>")
DTDS = {
    "billion-laughs": (LOL, "&a9;"),
    "quadratic": ("<!DOCTYPE stream:stream [<!ENTITY q '%s'>]>" % ("Q" * 65536), "&q;" * 1000),
    "external": ("<!DOCTYPE stream:stream SYSTEM 'file:///etc/passwd'>", ""),
    "parameter": ("<!DOCTYPE stream:stream [<!ENTITY % p SYSTEM 'http://127.0.0.1:1/x'> %p;]>",
                  ""),
    "huge-subset": ("<!DOCTYPE stream:stream [" +
                    "".join("<!ENTITY e%d '%s'>" % (i, "z" * 1000) for i in range(4000)) + "]>",
                    ""),
}


def restart_by_hand(c, step):
    """Runs step (starttls, or SASL that must succeed) without the client's automatic
    stream restart: the test then sends its own next stream header."""
    c._restart = lambda: "success"
    try:
        r = step()
    finally:
        del c._restart
    assert r in (None, "success"), r
    c.parser = type(c.parser)()
    c.stream_ended = False


def _dtd_stream(c, dtd, body):
    return ("<?xml version='1.0'?>%s<stream:stream to='localhost' version='1.0' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>%s"
            % (dtd, body))


@pytest.mark.parametrize("where", ["initial", "after-starttls", "after-sasl", "in-stream"])
def test_dtd_and_entity_bombs(stack, extra_frontend, login, new_user, where):
    fe = extra_frontend(max_stanza_size=64 * KB, **NO_LIMITS)
    by = Bystanders(login, new_user, fe.port)
    mon = RssMonitor(frontend=fe.proc.pid).start()
    conds = {}
    for name, (dtd, body) in DTDS.items():
        c = XMPPClient(fe.port, cafile=stack.cafile)
        try:
            if where != "initial":
                c.open_stream()
                if where == "after-starttls":
                    restart_by_hand(c, c.starttls)
                else:
                    c.starttls()
            if where in ("after-sasl", "in-stream"):
                user = new_user("dtd")
                restart_by_hand(c, lambda: c.auth_scram(user.localpart, user.password))
            if where == "in-stream":
                c.open_stream()
                c.bind("dtd")
                c.send_tolerant(dtd + body)
            else:
                c.send_tolerant(_dtd_stream(c, dtd, body))
            conds[name] = stream_error_condition(c, 10)
        finally:
            c.close()
    mon.stop()
    # RFC 6120 11.1: a DTD is restricted XML. Inside an open stream a DOCTYPE is also not
    # well-formed XML (it may only come before the root element).
    wanted = {"restricted-xml"} | ({"not-well-formed"} if where == "in-stream" else set())
    bad = {k: v for k, v in conds.items() if v not in wanted}
    assert not bad, "expected %s, got %s" % (sorted(wanted), bad)
    by.check()
    fresh_login_works(login, new_user, fe.port)
    mon.check("frontend", SLACK_KB + 4 * 64, "max_stanza_size 64 KiB; no entity is expanded")


# ------------------------------------------------------------------ invalid UTF-8
BAD_UTF8 = {
    "ff": b"\xff",
    "overlong": b"\xc0\x80",
    "lone-continuation": b"\x80",
    "truncated": b"\xe2\x82",
    "surrogate": b"\xed\xa0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
}
HEADER = (b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en' "
          b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
PREAUTH_STANZA = ("<auth xmlns='%s' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>"
                  % NS_SASL).encode()


def _markers(template, marks):
    """Offsets (in the UTF-8 bytes of `template`) of each '|' in marks[i], with the bytes
    that follow: positions to inject at, named."""
    raw = template.encode()
    out = {}
    for name, mark in marks.items():
        before, after = mark.split("|")
        at = raw.index((before + after).encode()) + len(before.encode())
        out[name] = at
    return raw, out


MESSAGE_T = ("<message to='{jid}' type='chat' id='utf8-1' xml:lang='en'>"
             "<body>hello w\u00f6rld</body><thread>t1</thread></message>")
MESSAGE_MARKS = {
    "before-stanza": "|<message ", "after-lt": "<|message ", "element-name": "<mes|sage ",
    "between-attrs": "chat' |id=", "attr-name": "t|ype=", "before-eq": "type|=",
    "attr-value": "'utf|8-1'", "xml-lang": "xml:l|ang", "child-name": "<bo|dy>",
    "text": "hel|lo", "inside-multibyte": "w\u00f6|rld", "end-tag": "</bo|dy>",
    "final-end-tag": "</mess|age>",
}
HEADER_MARKS = {
    "xml-decl": "<?x|ml", "element-name": "<stream:str|eam ", "attr-name": " t|o=",
    "attr-value": "'local|host'", "ns-value": "'jabber:cl|ient'", "between-attrs": "' |version",
    "before-gt": "streams'|>",
}


def _inject(raw, at, bad):
    # 'inside-multibyte': at is just after the first byte of the two-byte character, so
    # the character itself is broken too; elsewhere the sequence is inserted.
    return raw[:at] + bad + raw[at:]


def _run_cases(cases, workers):
    """cases: {name: fn() -> condition}; returns {name: condition or 'EXC: ...'}."""
    out = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        futs = {ex.submit(fn): name for name, fn in cases.items()}
        for f in concurrent.futures.as_completed(futs):
            try:
                out[futs[f]] = f.result()
            except Exception as e:  # noqa: BLE001 - reported per case
                out[futs[f]] = "EXC: %r" % e
    return out


def test_invalid_utf8_everywhere(stack, extra_frontend, login, new_user):
    """Each invalid sequence at every byte of a stream header and a pre-auth stanza (plain
    TCP), at every token of the restarted header after STARTTLS and after SASL, and of a
    message stanza after binding: a stream error (RFC 6120 4.9.3.22 unsupported-encoding
    names badly encoded UTF-8; expat reports it as a well-formedness error, 4.9.3.13
    not-well-formed) and the connection closed; the frontend keeps serving."""
    fe = extra_frontend(require_tls="false", **NO_LIMITS)
    by = Bystanders(login, new_user, fe.port)
    mon = RssMonitor(frontend=fe.proc.pid, router=stack.router.pid).start()
    timeout = 10.0
    seq = iter(range(1, 1 << 20))

    def raw_case(data):
        def run():
            c = XMPPClient(fe.port, timeout=timeout, source=source_addr(5, next(seq) % 60000))
            try:
                c.send_tolerant(data)
                return stream_error_condition(c, timeout)
            finally:
                c.close()
        return run

    # 1. Plain TCP, before anything: every byte position of header + pre-auth stanza.
    stream = HEADER + PREAUTH_STANZA
    step = 4 if VALGRIND else 1
    positions = sorted(set(range(0, len(stream), step)) | {len(stream) - 1})
    cases = {}
    for bname, bad in BAD_UTF8.items():
        for i in positions:
            cases["preauth@%d/%s" % (i, bname)] = raw_case(stream[:i] + bad + stream[i:])

    # 2. Restarted stream headers after STARTTLS (TLS) and after SASL (plain), tokens.
    hdr_t = HEADER.decode()
    hraw, hmarks = _markers(hdr_t, HEADER_MARKS)

    def restart_case(kind, data):
        def run():
            c = XMPPClient(fe.port, timeout=timeout, cafile=stack.cafile)
            try:
                c.open_stream()
                if kind == "tls":
                    restart_by_hand(c, c.starttls)
                else:
                    user = new_user("u8")
                    restart_by_hand(c, lambda: c.auth_scram(user.localpart, user.password))
                c.send_tolerant(data)
                return stream_error_condition(c, timeout)
            finally:
                c.close()
        return run

    for bname, bad in BAD_UTF8.items():
        for mname, at in hmarks.items():
            for kind in ("tls", "sasl"):
                cases["%s-header:%s/%s" % (kind, mname, bname)] = restart_case(
                    kind, _inject(hraw, at, bad))

    # 3. After binding: every token of a message stanza.
    def bound_case(mname, bad):
        def run():
            user = new_user("u8")
            c = plain_login(fe.port, user, resource="utf8", timeout=timeout)
            try:
                raw, marks = _markers(MESSAGE_T.format(jid=c.jid), MESSAGE_MARKS)
                c.send_tolerant(_inject(raw, marks[mname], bad))
                return stream_error_condition(c, timeout)
            finally:
                c.close()
        return run

    for bname, bad in BAD_UTF8.items():
        for mname in MESSAGE_MARKS:
            cases["bound:%s/%s" % (mname, bname)] = bound_case(mname, bad)

    t0 = time.monotonic()
    results = _run_cases(cases, workers=4 if VALGRIND else 8)
    took = time.monotonic() - t0
    mon.stop()
    hist = {}
    for v in results.values():
        hist[v] = hist.get(v, 0) + 1
    print("invalid UTF-8: %d cases in %.1fs: %s" % (len(results), took, hist))
    bad = {k: v for k, v in results.items() if v not in UTF8_ERRORS}
    assert not bad, "%d of %d cases without the expected stream error %s, e.g.: %s" % (
        len(bad), len(results), sorted(UTF8_ERRORS), dict(sorted(bad.items())[:15]))
    assert fe.proc.poll() is None
    by.check()
    fresh_login_works(login, new_user, fe.port)
    mon.check("frontend", SLACK_KB + 8 * PER_CONN_KB,
              "connections come and go, at most 8 at once")


# ------------------------------------------------------------------ the router's port
ZMTP_SIG = b"\xff" + b"\x00" * 8 + b"\x7f"


def zmtp_greeting(mechanism=b"NULL", major=3, minor=0, as_server=0):
    return (ZMTP_SIG + bytes([major, minor]) + mechanism.ljust(20, b"\x00")
            + bytes([as_server]) + b"\x00" * 31)


def zmtp_command(body):
    return b"\x04" + bytes([len(body)]) + body


READY = zmtp_command(b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER")


def ipc_header(type_, conn=0, seq=0, kind=0, stype=0, status=0, fields=(), flags=0,
               magic=0x58, version=1, nfields=None, trailer=b""):
    out = struct.pack(">BBBBQIBBBB", magic, version, type_, flags, conn, seq, kind, stype,
                      status, len(fields) if nfields is None else nfields)
    for f in fields:
        out += struct.pack(">H", len(f)) + f
    return out + trailer


def _router_checks(ps, by, mon, login, new_user):
    assert ps.router.poll() is None, "the router exited (status %s)" % ps.router.returncode
    by.check()
    fresh_login_works(login, new_user_ps(ps), ps.frontend.port)


def new_user_ps(ps):
    return lambda prefix="p", password=None: ps.new_user(prefix)


def test_router_port_tcp_garbage(private_stack, login):
    ps = private_stack
    by = Bystanders(login, new_user_ps(ps), ps.frontend.port)
    mon = RssMonitor(router=ps.router.pid).start()
    port = ps.router_port
    rnd = random.Random(6120)
    payloads = {
        "random": bytes(rnd.getrandbits(8) for _ in range(256 * 1024)),
        "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 100,
        "zeros": b"\x00" * 65536,
        "signature-only": ZMTP_SIG + b"\xff" * 1000,
        "bad-version": zmtp_greeting(major=9) + os.urandom(1000),
        "zmtp1": b"\x01\x00" + os.urandom(200),
        "curve-mismatch": zmtp_greeting(b"CURVE"),
        "plain-mismatch": zmtp_greeting(b"PLAIN") + b"\x04\x1a\x05HELLO" + os.urandom(100),
        "bad-command": zmtp_greeting() + b"\x04\x05\x05READX" + os.urandom(100),
        "ready-huge-property": zmtp_greeting() + zmtp_command(
            b"\x05READY\x0bSocket-Type\x7f\xff\xff\xffDEALER"),
        "frame-2^62": zmtp_greeting() + READY + b"\x02" + struct.pack(">Q", 1 << 62) + b"x" * 100,
        "frame-1GiB-claimed": zmtp_greeting() + READY + b"\x02" + struct.pack(">Q", 1 << 30)
                              + b"x" * 65536,
        "bad-flags": zmtp_greeting() + READY + b"\xf8\x05hello",
    }
    for name, data in payloads.items():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(data)
        except OSError:
            pass   # the router hung up on us: fine
        time.sleep(0.05)
        s.close()
    # Idle connections that never finish a greeting, held while others are served.
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
    try:
        time.sleep(0.5)
        _router_checks(ps, by, mon, login, new_user_ps(ps))
    finally:
        for s in idle:
            s.close()
    mon.stop()
    _router_checks(ps, by, mon, login, new_user_ps(ps))
    mon.check("router", SLACK_KB + 100 * PER_CONN_KB,
              "garbage is dropped; a 1 GiB frame claim must not be buffered")


def test_router_port_malformed_dealer_messages(private_stack, login):
    zmq = pytest.importorskip("zmq")
    ps = private_stack
    by = Bystanders(login, new_user_ps(ps), ps.frontend.port)
    mon = RssMonitor(router=ps.router.pid).start()
    rnd = random.Random(4242)
    epoch = rnd.getrandbits(64)
    good_hello = ipc_header(1, conn=epoch, fields=(b"evil-fe",))
    msgs = [
        [b""], [b"X"], [os.urandom(19)], [os.urandom(20)], [os.urandom(3072)],
        [b"X\x01"],                                            # truncated header
        [good_hello[:19]], [good_hello[:-1]],                  # truncated hello
        [ipc_header(1, magic=0x59, fields=(b"x",))],           # bad magic
        [ipc_header(1, version=2, fields=(b"x",))],            # bad version
        [ipc_header(0)], [ipc_header(99)], [ipc_header(255)],  # bad types
        [ipc_header(7, kind=9)], [ipc_header(7, stype=200)],   # bad kind / stype
        [ipc_header(1, nfields=5, fields=(b"a",) * 5)],        # too many fields
        [ipc_header(1, nfields=2, fields=(b"a",))],            # a field missing
        [ipc_header(1, fields=(b"a" * 4000,))],                # field too long
        [ipc_header(1, fields=(b"a\x00b",))],                  # NUL in a field
        [ipc_header(1, fields=(b"x",), trailer=b"junk")],      # bytes left over
        [struct.pack(">BBBBQIBBBB", 0x58, 1, 1, 0, 1, 0, 0, 0, 0, 1) + b"\xff\xff"],  # length past end
        # Wrong frame counts.
        [good_hello, b"payload", b"extra"], [good_hello] * 6, [b""] * 3,
        # Huge frames.
        [os.urandom(16 * 1024 * 1024)],
        [ipc_header(7, conn=1, kind=1, fields=(b"", b"a@localhost/x", b"id")),
         b"<message>" + b"A" * (8 * 1024 * 1024) + b"</message>"],
    ]
    # Well-formed headers with hostile content, from a "frontend" that said hello.
    hostile = [
        [good_hello],
        [ipc_header(3, conn=5, seq=1, status=1, fields=(b"\xff\xfe nobody",))],      # auth
        [ipc_header(3, conn=5, seq=2, status=77, fields=(b"x" * 3071,))],
        [ipc_header(5, conn=6, seq=3, fields=(b"not a jid@@/\xc0\x80",))],           # bind
        [ipc_header(5, conn=6, seq=4, fields=())],
        [ipc_header(7, conn=999, kind=1, stype=2, fields=(b"a@localhost", b"b@localhost/r",
                                                          b"i")), b"<<garbage"],     # stanza
        [ipc_header(7, conn=6, kind=3, stype=12, fields=(b"", b"", b"")), b"\xff" * 100],
        [ipc_header(8, conn=12345)],                                                  # unbind
        [ipc_header(11, conn=7, flags=3, status=200, fields=(b"\xff@@@/",)), b"<pres"],
        [ipc_header(11, conn=8, flags=0xff, fields=(b"x@localhost/r",)), b"not xml"],
        [ipc_header(11, conn=9, flags=1, fields=(b"y@localhost/r",))],               # no payload
        [ipc_header(4, conn=1, fields=(b"1,2,3,4",))],     # replies meant for frontends
        [ipc_header(9, conn=1), b"<message/>"], [ipc_header(10, conn=1, fields=(b"reset",))],
        [ipc_header(2, conn=epoch, fields=(b"evil-fe",))],
    ]
    ctx = zmq.Context()
    try:
        socks = []
        for batch, name in ((msgs, "anon"), (hostile, "evil")):
            d = ctx.socket(zmq.DEALER)
            d.setsockopt(zmq.LINGER, 2000)
            d.setsockopt(zmq.SNDHWM, 100000)
            if name == "evil":
                d.setsockopt(zmq.IDENTITY, b"evil-fe:%016x" % epoch)
            d.connect("tcp://127.0.0.1:%d" % ps.router_port)
            socks.append(d)
            for m in batch:
                d.send_multipart(m)
        # A flood of small junk messages.
        for _ in range(5000 if VALGRIND else 20000):
            socks[0].send_multipart([os.urandom(rnd.randrange(1, 64))])
        # The router answers the hostile frontend's hello (it does not know it is one).
        # Give it time to read everything.
        deadline = time.monotonic() + (60 if VALGRIND else 15)
        while time.monotonic() < deadline:
            if read_log(ps.router_logs[-1]).count("malformed") >= 20:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        _router_checks(ps, by, mon, login, new_user_ps(ps))
        for d in socks:
            d.close(linger=0)
    finally:
        ctx.term()
    mon.stop()
    log = read_log(ps.router_logs[-1])
    assert "malformed" in log, "the router logged no dropped malformed message:\n" + log[-3000:]
    errors = [l for l in log.splitlines() if " error: " in l]
    print("router error-level lines: %d %s" % (len(errors), errors[:5]))
    _router_checks(ps, by, mon, login, new_user_ps(ps))
    # A frame is held whole while it is read: the router must take one as big as the
    # biggest stanza a frontend may be configured for (max_stanza_size at most 16 MiB), and
    # these frames are 16 MiB. Freed after use; the peak is one or two of them.
    mon.check("router", SLACK_KB + 2 * 16 * 1024, "16 MiB frames (the largest max_stanza_size)")

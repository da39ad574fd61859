"""Stream management (XEP-0198) when parts of the server stall, die or come back: each
stanza is numbered and written once, only what reached the router is acknowledged, a
resume cut short or a frontend coming back late does not leave a session on a dead
connection, and the kept stanzas are bounded in bytes. Each test runs its own Redis, router
and frontends (conftest.PrivateStack), stopping and killing them."""
import collections
import os
import signal
import socket
import struct
import time

import pytest

from conftest import (READY_TIMEOUT, Frontend, running_private_stack, skip_remote, wait_port)
from xmpp_client import NS_CLIENT, XMPPClient, dump, q

NS_SM = "urn:xmpp:sm:3"
SM_ANSWERS = (q(NS_SM, "enabled"), q(NS_SM, "failed"))
RESUME_ANSWERS = (q(NS_SM, "resumed"), q(NS_SM, "failed"))
MESSAGE = "{%s}message" % NS_CLIENT


def second_frontend(ps, **overrides):
    """Another frontend of the private stack (same router)."""
    env = dict(ps.env)
    env.update(overrides)
    ps.stack._extra += 1
    fe = Frontend(ps.stack, "privateb%d" % ps.stack._extra, env)
    fe.allow_error_lines = True
    wait_port(fe.port, READY_TIMEOUT, fe.proc, fe.log)
    return fe


def connect(ps, port, user):
    c = XMPPClient(port, cafile=ps.stack.cafile, timeout=5.0)
    c.open_stream()
    c.starttls()
    assert c.auth(user.localpart, user.password) == "success"
    return c


def managed(ps, port, user, resource):
    """A bound client with resumable stream management; returns (client, resumption id)."""
    c = connect(ps, port, user)
    c.bind(resource)
    c.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    en = c.wait_for(lambda e: e.tag in SM_ANSWERS)
    assert en.tag == q(NS_SM, "enabled"), dump(en)
    return c, en.get("id")


def resume(ps, port, user, smid, h):
    c = connect(ps, port, user)
    c.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, smid, h))
    return c, c.wait_for(lambda e: e.tag in RESUME_ANSWERS)


def plain_client(ps, port, user, resource):
    c = XMPPClient(port, cafile=ps.stack.cafile, timeout=5.0)
    c.login(user.localpart, user.password, resource=resource)
    return c


@pytest.fixture
def sm_stack(stack):
    if getattr(stack, "remote", False):
        skip_remote("stops and kills its own router and frontends")
    made = []

    def start(router_env=None, frontend_env=None):
        cm = running_private_stack(stack, "smfail", router_env, frontend_env)
        ps = cm.__enter__()
        made.append((cm, ps))
        ps.extra = []
        return ps
    yield start
    for cm, ps in made:
        for fe in ps.extra:
            fe.stop()
        cm.__exit__(None, None, None)


def test_router_stall_writes_each_number_once(sm_stack):
    """The frontend of a managed client counts the router as gone while it is stopped
    (router_timeout), resyncs when it answers, and the router resends what may have been
    on its way: every message still reaches the client once, and its acknowledgements stay
    within what was sent."""
    ps = sm_stack(frontend_env={"router_timeout": "400", "heartbeat_interval": "200"})
    fe_b = second_frontend(ps)
    ps.extra.append(fe_b)
    alice, bob = ps.new_user("sa"), ps.new_user("sb")
    c, _ = managed(ps, ps.frontend.port, alice, "phone")
    b = plain_client(ps, fe_b.port, bob, "pc")
    ps.router.send_signal(signal.SIGSTOP)
    try:
        for i in range(1000):
            b.message(alice.jid + "/phone", "m%d" % i)
        time.sleep(1.5)
    finally:
        ps.router.send_signal(signal.SIGCONT)
    bodies, handled = [], 0
    deadline = time.monotonic() + 20
    while len(bodies) < 1000 and time.monotonic() < deadline:
        try:
            e = c.recv(0.5)
        except TimeoutError:
            continue
        assert not e.tag.endswith("}error"), dump(e)
        if e.tag.startswith("{%s}" % NS_CLIENT):
            handled += 1
            if e.tag == MESSAGE:
                bodies.append(e.findtext("{%s}body" % NS_CLIENT))
        elif e.tag == q(NS_SM, "r"):
            c.send("<a xmlns='%s' h='%d'/>" % (NS_SM, handled))
    dups = {k: n for k, n in collections.Counter(bodies).items() if n > 1}
    assert not dups, "written twice: %s" % sorted(dups)[:10]
    assert bodies == ["m%d" % i for i in range(1000)], bodies[:5]
    # The stream is still sound: the last acknowledgement is taken, the session answers.
    c.send("<a xmlns='%s' h='%d'/>" % (NS_SM, handled))
    assert c.ping().get("type") == "result"


def test_r_is_answered_only_for_what_reached_the_router(sm_stack):
    """While the router does not answer, the frontend keeps the client's stanzas: it does
    not say them handled. Its frontend killed, the client resumes elsewhere and learns
    they never arrived (so it sends them again)."""
    ps = sm_stack(router_env={"frontend_timeout": "1500"},
                  frontend_env={"router_timeout": "400", "heartbeat_interval": "200"})
    fe_b = second_frontend(ps)
    ps.extra.append(fe_b)
    alice, bob = ps.new_user("ra"), ps.new_user("rb")
    c, smid = managed(ps, ps.frontend.port, alice, "phone")
    ps.router.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.8)  # the frontend counts the router as gone and buffers
        for i in range(3):
            c.message(bob.jid, "early%d" % i)
        c.send("<r xmlns='%s'/>" % NS_SM)
        c.expect_nothing(lambda e: e.tag == q(NS_SM, "a") and e.get("h") != "0", 0.5)
        ps.frontend.kill()
    finally:
        ps.router.send_signal(signal.SIGCONT)
    time.sleep(2.5)  # frontend_timeout: the session waits
    c2, r = resume(ps, fe_b.port, alice, smid, 0)
    assert r.tag == q(NS_SM, "resumed"), dump(r)
    assert r.get("h") == "0", dump(r)


def test_resume_cut_short_leaves_the_session_waiting(sm_stack):
    """A client drops its connection right after <resume/>, before the router answered:
    the session is not left on that dead connection but waits again, and its wait still
    runs out (sm_resume_timeout)."""
    ps = sm_stack(router_env={"sm_resume_timeout": "3"})
    alice = ps.new_user("za")
    c, smid = managed(ps, ps.frontend.port, alice, "phone")
    c.presence()
    c.abort()
    time.sleep(0.5)
    c2 = connect(ps, ps.frontend.port, alice)
    ps.router.send_signal(signal.SIGSTOP)
    try:
        c2.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, smid))
        time.sleep(0.3)
        c2.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c2.abort()  # a reset while the router has the request
        time.sleep(0.3)
    finally:
        ps.router.send_signal(signal.SIGCONT)
    # The session waits again (not on the dead connection), and its wait runs out.
    time.sleep(4.5)
    c4, r = resume(ps, ps.frontend.port, alice, smid, 0)
    assert r.tag == q(NS_SM, "failed"), dump(r)
    assert r.find(q("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found")) is not None, dump(r)


def test_late_frontend_does_not_take_back_a_resumed_session(sm_stack):
    """Frontend A stalls past frontend_timeout; the client resumes through frontend B. When
    A comes back and resends its stale connection, the resumed session stays on B."""
    ps = sm_stack(router_env={"frontend_timeout": "1500"})
    fe_b = second_frontend(ps)
    ps.extra.append(fe_b)
    alice, bob = ps.new_user("la"), ps.new_user("lb")
    c, smid = managed(ps, ps.frontend.port, alice, "phone")
    c.presence()
    ps.frontend.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(2.5)  # the router gave up on A: the session waits
        c2, r = resume(ps, fe_b.port, alice, smid, 0)
        assert r.tag == q(NS_SM, "resumed"), dump(r)
    finally:
        ps.frontend.proc.send_signal(signal.SIGCONT)
    time.sleep(2.0)  # A resyncs its stale connection
    b = plain_client(ps, fe_b.port, bob, "pc")
    b.message(alice.jid + "/phone", "still here")
    got = c2.wait_message("still here")
    assert got.get("to") == alice.jid + "/phone"
    assert c2.ping().get("type") == "result"


def test_kept_stanzas_are_bounded_in_bytes(sm_stack):
    """A waiting session keeps at most sm_max_unacked_bytes of stanzas: past it the session
    ends, and what it kept, and what arrived while it ended, goes to offline storage."""
    ps = sm_stack(router_env={"sm_max_unacked_bytes": "65536", "sm_resume_timeout": "60"})
    alice, bob = ps.new_user("ba"), ps.new_user("bb")
    c, smid = managed(ps, ps.frontend.port, alice, "phone")
    c.presence()
    c.abort()
    time.sleep(0.5)
    b = plain_client(ps, ps.frontend.port, bob, "pc")
    big = "x" * 10000
    for i in range(10):
        b.message(alice.jid + "/phone", "%d %s" % (i, big))
    # Past 64 KiB the session ends: no longer resumable.
    b.expect_nothing(lambda e: e.tag == MESSAGE and e.get("type") == "error", 1.5)
    c2, r = resume(ps, ps.frontend.port, alice, smid, 0)
    assert r.tag == q(NS_SM, "failed"), dump(r)
    # Every message is stored for the next login, in order, none bounced.
    c3 = plain_client(ps, ps.frontend.port, alice, "laptop")
    c3.presence()
    got = [c3.wait_message(None, 10).findtext("{%s}body" % NS_CLIENT).split(" ")[0]
           for _ in range(10)]
    assert got == [str(i) for i in range(10)], got


def test_router_restart_keeps_the_shorter_max(sm_stack):
    """The client asked for a 2 s wait (max='2'); after a router restart its frontend resends
    the session with the granted time, so the wait still runs out after 2 s, not after
    sm_resume_timeout."""
    ps = sm_stack()
    alice = ps.new_user("ma")
    c = connect(ps, ps.frontend.port, alice)
    c.bind("phone")
    c.send("<enable xmlns='%s' resume='true' max='2'/>" % NS_SM)
    en = c.wait_for(lambda e: e.tag in SM_ANSWERS)
    assert en.tag == q(NS_SM, "enabled") and en.get("max") == "2", dump(en)
    smid = en.get("id")
    ps.stop_router()
    ps.start_router()
    # Once the new router answers a ping from the session, it has it back (resync).
    deadline = time.monotonic() + 15
    while True:
        try:
            if c.ping(timeout=1.0).get("type") == "result":
                break
        except (AssertionError, TimeoutError):
            pass
        assert time.monotonic() < deadline, "the session did not come back after the restart"
    c.abort()
    time.sleep(3.5)
    c2, r = resume(ps, ps.frontend.port, alice, smid, 0)
    assert r.tag == q(NS_SM, "failed"), dump(r)

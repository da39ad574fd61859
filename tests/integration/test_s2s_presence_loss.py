"""Remote contacts' presence when a server connection is lost (issue #17, RFC 6121 presence
across domains): two servers of ours federate (test_s2s_federation.two_servers); a@A and
b@B are subscribed both ways and see each other online.

- B's frontend, which holds B's connection to A, is killed (SIGKILL: no unavailable
  presence, no </stream:stream>): A's frontend reports the connection lost (s2s-closed),
  A's router delivers b's unavailable presence to a and probes b, which bounces (B cannot
  be reached): b stays unavailable.
- A's s2s frontend, which holds the connection from B, is killed and restarted, while a
  is on a second frontend of A: A's router sees the frontend gone, delivers b's
  unavailable presence and probes b; B is up and answers, so b is online again for a.
"""

import time
from contextlib import contextmanager

import prosody_peer as pp
from conftest import READY_TIMEOUT, Frontend, wait_port
from s2s_helpers import online, opened, pki  # noqa: F401 (fixtures)
from test_s2s_federation import two_servers
from xmpp_client import XMPPClient

NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def drain(c):
    """Forgets what `c` has received so far (the presence exchanged while befriending)."""
    c.im_collect(0.5)
    c.im_take(lambda e: True)


@contextmanager
def extra_frontend(ps, tag, **overrides):
    """Another frontend of the private stack `ps` (its router and domain), stopped and
    checked at the end."""
    env = dict(ps.env)
    env.update(overrides)
    ps.stack._extra += 1
    fe = Frontend(ps.stack, "%s%d" % (tag, ps.stack._extra), env)
    fe.allow_error_lines = True
    try:
        wait_port(fe.port, READY_TIMEOUT, fe.proc, fe.log)
        yield fe
    finally:
        problems = fe.stop()
        assert not problems, "\n".join(problems)


def login_on(opened, ps, port, user, resource):
    """`user` of `ps` logged in on the frontend listening on `port`, and online."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        c = XMPPClient(port, domain=ps.domain, cafile=ps.cert.cafile, timeout=5.0)
        try:
            c.login(user.localpart, user.password, resource=resource)
            break
        except Exception:  # noqa: BLE001 - the new frontend's router link may lag
            c.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    opened(c)
    pp.go_online(c)
    return c


def test_contact_unavailable_when_its_server_goes_away(stack, pki, opened):
    """B's frontend is killed: a sees b go unavailable (not online for ever), and the
    probe A's server sends for b bounces: b stays unavailable."""
    es, sa, sb = two_servers(stack, pki, "pla")
    with es:
        ua, ub = sa.new_user("la"), sb.new_user("lb")
        a = online(opened, sa, ua, "a")
        b = online(opened, sb, ub, "b")
        pp.befriend(a, b)
        drain(a)

        sb.frontend.kill()
        # RFC 6121 4.5.3: unavailable presence from b's full JID, made by A's server when
        # the connection that carried b's presence was lost.
        a.im_wait_presence(sender=b.jid, type_="unavailable", timeout=pp.WAIT)
        # The probe (RFC 6121 4.3) cannot reach B: it comes back as an error, and b's
        # presence does not come back.
        err = a.im_wait_presence(sender=ub.jid, type_="error", timeout=pp.WAIT)
        conds = [el.tag for el in err.iter() if el.tag.startswith("{%s}" % NS_STANZAS)]
        assert any(t.endswith("}remote-server-not-found") or t.endswith("}remote-server-timeout")
                   for t in conds), pp.dump(err)
        a.im_expect_none(lambda e: e.tag.endswith("}presence") and e.get("type") is None
                         and (e.get("from") or "").startswith(ub.jid),
                         duration=1.0, what="b available again")


def test_contact_back_when_only_our_frontend_was_lost(stack, pki, opened):
    """A's s2s frontend (holding the connection from B) is killed and comes back under its
    name, a being on another frontend of A: a sees b go unavailable, then A's probe is
    answered by B (which never went away) and a sees b online again."""
    es, sa, sb = two_servers(stack, pki, "plb")
    with es:
        with extra_frontend(sa, "c2sonly") as fe2:
            ua, ub = sa.new_user("ma"), sb.new_user("mb")
            a = login_on(opened, sa, fe2.port, ua, "a")
            b = online(opened, sb, ub, "b")
            pp.befriend(a, b)
            drain(a)

            old = sa.frontend
            old.kill()
            # The same frontend_name and s2s port: its hello with a new epoch tells A's
            # router that the frontend it replaces is gone (docs/PROTOCOL.md).
            env = dict(sa.s2s_env)
            env.update(frontend_name=old.name)
            sa.stack._extra += 1
            sa.frontend = Frontend(sa.stack, "private%d" % sa.stack._extra,
                                   dict(sa.env, **env))
            sa.frontend.allow_error_lines = True
            try:
                wait_port(sa.s2s_port, READY_TIMEOUT, sa.frontend.proc, sa.frontend.log)
                a.im_wait_presence(sender=b.jid, type_="unavailable", timeout=pp.WAIT)
                # B answers the probe with b's presence (RFC 6121 4.3.2).
                a.im_wait_presence(sender=b.jid, timeout=pp.WAIT)
                # And federation works on: a chat both ways.
                pp.chat(a, b, "after the frontend came back")
                pp.chat(b, a, "and back")
            finally:
                problems = old.stop()
            assert not problems, "\n".join(problems)

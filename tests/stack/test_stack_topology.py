"""The deployment topology behind HAProxy (deploy/stack): clients on different frontends
talk; a frontend killed with SIGKILL, a router restart and a Redis restart each behave as
docs/ARCHITECTURE.md says ("Failure behaviour"). Every wait is bounded."""

import os
import signal
import time

from localstack import FRONTEND_TIMEOUT_MS, NFE, NS2S, online
from xmpp_client import NS_CLIENT, NS_TLS, q

PRESENCE = q(NS_CLIENT, "presence")
NS_ROSTER = "jabber:iq:roster"


def presence_from(c, jid, unavailable=False, timeout=5.0):
    def pred(e):
        if e.tag != PRESENCE or e.get("from") != jid:
            return False
        return (e.get("type") == "unavailable") == unavailable
    return c.wait_for(pred, timeout, "%spresence from %s" % ("unavailable " if unavailable else "", jid))


def test_stack_serves_starttls_and_direct_tls(lstack, clients):
    u = lstack.new_user()
    c = clients()
    c.login(u.localpart, u.password, resource="starttls")
    assert c.ping().get("type") == "result"
    d = clients(lstack.tls_port)
    d.sock = d.ssl_context().wrap_socket(d.sock, server_hostname="localhost")
    d.tls = True
    features = d.open_stream()
    assert features.find(q(NS_TLS, "starttls")) is None
    assert d.auth(u.localpart, u.password) == "success"
    d.bind("direct")
    assert d.ping().get("type") == "result"


def test_users_on_different_frontends_chat_and_see_presence(lstack, clients):
    a, b = lstack.new_user("a"), lstack.new_user("b")
    ca, fa = online(lstack, clients, a, "home")
    cb, fb = online(lstack, clients, b, "work", not_on=fa)
    assert fa != fb
    # Directed presence (RFC 6121 4.6) both ways, across frontends.
    ca.send("<presence to='%s'><status>hi from %s</status></presence>" % (cb.jid, fa))
    assert presence_from(cb, ca.jid).findtext(q(NS_CLIENT, "status")) == "hi from %s" % fa
    cb.send("<presence to='%s'/>" % ca.jid)
    presence_from(ca, cb.jid)
    # Chat both ways, to the full and to the bare JID.
    ca.message(cb.jid, "hello across frontends")
    assert cb.wait_message("hello across frontends").get("from") == ca.jid
    cb.message(a.jid, "hello back to your bare JID")
    assert ca.wait_message("hello back to your bare JID").get("from") == cb.jid
    # A user's own resources on two frontends see each other's presence (RFC 6121 4.2.2).
    ca2, fa2 = online(lstack, clients, a, "phone", not_on=fa)
    presence_from(ca, ca2.jid)
    ca.send("<presence><show>away</show></presence>")
    assert presence_from(ca2, ca.jid).findtext(q(NS_CLIENT, "show")) == "away"


def test_frontend_killed_sessions_end_and_clients_reconnect(lstack, clients):
    a, b = lstack.new_user("k"), lstack.new_user("kb")
    doomed, fe_doomed = online(lstack, clients, a, "doomed")
    survivor, fe_ok = online(lstack, clients, a, "survivor", not_on=fe_doomed)
    friend, _ = online(lstack, clients, b, "friend", on=fe_ok)
    lstack.run("kill", fe_doomed)
    t0 = time.monotonic()
    # The router notices within frontend_timeout and ends the sessions of that frontend:
    # the user's other resource gets the unavailable presence.
    presence_from(survivor, doomed.jid, unavailable=True, timeout=FRONTEND_TIMEOUT_MS / 1000 + 3)
    assert time.monotonic() - t0 < FRONTEND_TIMEOUT_MS / 1000 + 3
    # The killed frontend's client lost its connection...
    doomed.assert_closed(3)
    # ...and reconnects through HAProxy (to a frontend that is alive) and carries on.
    back, fe_back = online(lstack, clients, a, "doomed")
    assert fe_back != fe_doomed
    presence_from(survivor, back.jid)
    friend.message(back.jid, "welcome back")
    assert back.wait_message("welcome back").get("from") == friend.jid
    # The frontend comes back under the same name with a new epoch and serves again.
    lstack.run("start", fe_doomed)
    deadline = time.monotonic() + 15
    again = None
    while again is None:
        try:
            again, _ = online(lstack, clients, b, "again", on=fe_doomed)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    again.message(back.jid, "from the restarted frontend")
    assert back.wait_message("from the restarted frontend").get("from") == again.jid


def test_router_restart_no_client_disconnected(lstack, clients):
    a, b = lstack.new_user("r"), lstack.new_user("rb")
    ca, fa = online(lstack, clients, a, "a")
    cb, fb = online(lstack, clients, b, "b", priority=3, not_on=fa)
    lstack.run("stop", "router")
    # Sent while the router is away: buffered by the frontends.
    ca.message(cb.jid, "sent while the router was away")
    cb.message(a.jid, "to a bare JID while away")
    time.sleep(0.5)
    lstack.run("start", "router")
    assert cb.wait_message("sent while the router was away", timeout=10).get("from") == ca.jid
    assert ca.wait_message("to a bare JID while away", timeout=10).get("from") == cb.jid
    # Sessions are back with their state: bare JID routing needs b available.
    ca.message(b.jid, "after the restart")
    assert cb.wait_message("after the restart").get("from") == ca.jid
    assert ca.ping().get("type") == "result" and cb.ping().get("type") == "result"
    assert not ca.eof and not cb.eof
    # New logins work too.
    c3, _ = online(lstack, clients, lstack.new_user("r3"), "new")
    c3.message(cb.jid, "newcomer")
    assert cb.wait_message("newcomer").get("from") == c3.jid
    for i in range(1, NFE + 1):
        assert "resent" in lstack.log("c2s%d" % i)


def try_login(lstack, user):
    c = lstack.client(timeout=5)
    try:
        c.open_stream()
        c.starttls()
        return c.auth_scram(user.localpart, user.password)
    except Exception as e:  # noqa: BLE001
        return repr(e)
    finally:
        c.close()


def test_redis_restart_recovers_without_data_loss(lstack, clients):
    a, b = lstack.new_user("d"), lstack.new_user("db")
    ca, fa = online(lstack, clients, a, "a")
    cb, _ = online(lstack, clients, b, "b", not_on=fa)
    lstack.run("stop", "redis")
    try:
        # Storage is away: a login is refused as temporary, not hung or crashed.
        assert try_login(lstack, a) == "temporary-auth-failure"
        # Online routing goes on without Redis.
        ca.message(cb.jid, "no redis needed")
        assert cb.wait_message("no redis needed").get("from") == ca.jid
    finally:
        lstack.run("start", "redis")
    # The router reconnects by itself; the accounts made before are still there (AOF).
    deadline = time.monotonic() + 15
    while True:
        r = try_login(lstack, b)
        if r == "success":
            break
        assert time.monotonic() < deadline, "login still fails after Redis came back: %s" % r
        time.sleep(0.3)
    users = lstack.run("ctl", "users").stdout.split()
    assert a.jid in users and b.jid in users
    cb2, _ = online(lstack, clients, b, "b2")
    ca.message(cb2.jid, "redis is back")
    assert cb2.wait_message("redis is back").get("from") == ca.jid


def test_frontend_frozen_past_timeout_comes_back(lstack, clients):
    # A frontend that stops answering (SIGSTOP: a hung process, a cut network) for longer
    # than frontend_timeout is taken for dead; when it answers again, its clients are still
    # connected: it resends their sessions and presence, and their contacts see them back.
    a = lstack.new_user("f")
    frozen, fe_frozen = online(lstack, clients, a, "frozen")
    watcher, _ = online(lstack, clients, a, "watcher", not_on=fe_frozen)
    pid = int((lstack.dir / "pids" / ("%s.pid" % fe_frozen)).read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        presence_from(watcher, frozen.jid, unavailable=True,
                      timeout=FRONTEND_TIMEOUT_MS / 1000 + 3)
    finally:
        os.kill(pid, signal.SIGCONT)
    presence_from(watcher, frozen.jid, timeout=8)
    watcher.message(frozen.jid, "you are back")
    assert frozen.wait_message("you are back", timeout=5).get("from") == watcher.jid
    frozen.message(watcher.jid, "I never left")
    assert watcher.wait_message("I never left").get("from") == frozen.jid
    assert not frozen.eof


def ctl_sessions(lstack, *args):
    """deploy/stack ctl sessions [JID] -> {full JID: [frontend, address, since, tls, sm]}."""
    out = lstack.run("ctl", "sessions", *args).stdout
    return {f[0]: f[1:] for f in (line.split("\t") for line in out.splitlines())}


def test_xmppctl_sessions_kick_and_stats_behind_haproxy(lstack, clients):
    # The operator's view of the stack: each session with its frontend and the client's
    # own address (from HAProxy's PROXY header), the same after a router restart (the
    # frontends resend it); stats per frontend; kick through the frontend that holds it.
    a, b = lstack.new_user("op"), lstack.new_user("opb")
    ca, fa = online(lstack, clients, a, "a")
    cb, fb = online(lstack, clients, b, "b", not_on=fa)
    rows = ctl_sessions(lstack)
    for c, fe in ((ca, fa), (cb, fb)):
        assert rows[c.jid][0] == fe, rows
        assert rows[c.jid][1] == "127.0.0.1:%d" % c.sock.getsockname()[1], rows
        assert rows[c.jid][3] == c.sock.version(), rows
    lstack.run("restart", "router")
    deadline = time.monotonic() + 10
    while True:
        r = lstack.run("ctl", "sessions", check=False)
        if r.returncode == 0 and ca.jid in r.stdout and cb.jid in r.stdout:
            break
        assert time.monotonic() < deadline, "sessions not back after the restart: %s%s" \
            % (r.stdout, r.stderr)
        time.sleep(0.2)
    after = ctl_sessions(lstack)
    assert after[ca.jid] == rows[ca.jid] and after[cb.jid] == rows[cb.jid], (rows, after)
    stats = dict(line.split(": ", 1) for line in lstack.run("ctl", "stats").stdout.splitlines())
    assert stats["frontends"] == str(NFE + NS2S), stats
    assert int(stats["frontend %s" % fa].split()[0]) >= 1, stats
    out = lstack.run("ctl", "kick", cb.jid, "maintenance").stdout
    assert out.strip() == "kicked %s" % cb.jid, out
    cb.expect_stream_error("policy-violation")
    assert ca.ping().get("type") == "result"
    assert cb.jid not in ctl_sessions(lstack)


def roster_push_for(c, jid, subscription, timeout=5.0):
    """Waits for a roster push of `jid` with `subscription` (RFC 6121 2.1.6)."""
    def pred(e):
        if e.tag != q(NS_CLIENT, "iq") or e.get("type") != "set":
            return False
        item = e.find("%s/%s" % (q(NS_ROSTER, "query"), q(NS_ROSTER, "item")))
        return item is not None and item.get("jid") == jid \
            and item.get("subscription") == subscription
    return c.wait_for(pred, timeout, "roster push of %s (%s)" % (jid, subscription))


def test_account_deleted_with_contacts_on_both_frontends(lstack, clients):
    # The account has a session on each frontend, its contact is online behind HAProxy
    # too; `deploy/stack ctl deluser` ends both sessions, the contact's roster loses the
    # subscriptions (pushed), and the address is not handed out again.
    a, b = lstack.new_user("gone"), lstack.new_user("stays")
    ca, fa = online(lstack, clients, a, "one")
    ca2, _ = online(lstack, clients, a, "two", not_on=fa)
    cb, _ = online(lstack, clients, b, "b")
    for c in (ca, cb):
        assert c.iq("get", "<query xmlns='%s'/>" % NS_ROSTER).get("type") == "result"
    ca.send("<presence to='%s' type='subscribe'/>" % b.jid)
    cb.wait_for(lambda e: e.tag == PRESENCE and e.get("type") == "subscribe", 5.0, "subscribe")
    cb.send("<presence to='%s' type='subscribed'/>" % a.jid)
    roster_push_for(cb, a.jid, "from")
    roster_push_for(ca, b.jid, "to")
    out = lstack.run("ctl", "deluser", a.jid).stdout
    assert "deleted" in out, out
    for c in (ca, ca2):
        c.expect_stream_error("not-authorized")
    roster_push_for(cb, a.jid, "none")
    r = lstack.run("ctl", "adduser", a.jid, "another-password", check=False)
    assert r.returncode == 1 and "tombstone" in r.stderr, r.stderr
    assert "tombstone" in lstack.run("ctl", "user", a.jid).stdout

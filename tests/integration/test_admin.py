"""xmppctl against the running router (its admin endpoint, docs/PROTOCOL.md "Admin
endpoint"): sessions, kick, stats, user, announce; a router that cannot be reached; the
endpoint secured with CURVE when link_curve is on."""

import re
import time
from datetime import datetime, timezone

import pytest

from conftest import REDIS_PREFIX, free_port, read_log
from security_helpers import expect_refused_start, keygen, secure, wait_log  # noqa: F401
from xmpp_client import MESSAGE_TAG, NS_STREAMS_ERR, dump

NS = "{jabber:client}"


def ctl_ok(stack, *args, **kw):
    r = stack.ctl(*args, **kw)
    assert r.returncode == 0, "xmppctl %s: exit %d\n%s%s" % (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def session_rows(stack, *args):
    """xmppctl sessions [JID] -> {full JID: [frontend, address, since, tls, sm]}."""
    rows = {}
    for line in ctl_ok(stack, "sessions", *args).splitlines():
        fields = line.split("\t")
        assert len(fields) == 6, "not six tab-separated fields: %r" % line
        rows[fields[0]] = fields[1:]
    return rows


def stats(stack):
    """xmppctl stats -> {name: value text}."""
    out = {}
    for line in ctl_ok(stack, "stats").splitlines():
        name, _, value = line.partition(": ")
        out[name] = value
    return out


def client_addr(c):
    host, port = c.sock.getsockname()[:2]
    return "%s:%d" % (host, port)


def wait_until(predicate, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def test_sessions_lists_clients_of_both_frontends(stack, login, new_user, extra_frontend):
    fe2 = extra_frontend()
    u, v = new_user(), new_user()
    before = time.time()
    a = login(u, resource="main")
    b = login(v, resource="other", port=fe2.port)
    rows = session_rows(stack)
    assert a.jid in rows and b.jid in rows, rows
    for c, fe in ((a, "fe1"), (b, fe2.name)):
        frontend, addr, since, tls, sm = rows[c.jid]
        assert frontend == fe, rows[c.jid]
        assert addr == client_addr(c), (addr, client_addr(c))
        assert tls in ("TLSv1.2", "TLSv1.3") and tls == c.sock.version(), (tls, c.sock.version())
        bound = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert before - 2 <= bound.timestamp() <= time.time() + 1, since
        assert sm == "no", rows[c.jid]   # stream management is not built yet


def test_sessions_filter_by_bare_and_full_jid(stack, login, new_user, extra_frontend):
    fe2 = extra_frontend()
    u, other = new_user(), new_user()
    r1 = login(u, resource="r1")
    r2 = login(u, resource="r2", port=fe2.port)
    o = login(other, resource="o")
    assert set(session_rows(stack, u.jid)) == {r1.jid, r2.jid}
    assert set(session_rows(stack, r2.jid)) == {r2.jid}
    assert set(session_rows(stack, o.jid.upper().replace("/O", "/o"))) == {o.jid}
    assert session_rows(stack, u.jid + "/nobody") == {}
    r = stack.ctl("sessions", "not a jid@")
    assert r.returncode == 1 and "not a valid JID" in r.stderr, (r.returncode, r.stderr)


def test_kick_full_jid_on_the_other_frontend(stack, login, new_user, extra_frontend):
    fe2 = extra_frontend()
    u = new_user()
    stay = login(u, resource="stay")
    gone = login(u, resource="gone", port=fe2.port)
    out = ctl_ok(stack, "kick", gone.jid, "Spamming", "the", "room")
    assert out.strip() == "kicked %s" % gone.jid, out
    err = gone.expect_stream_error("policy-violation")
    assert err.findtext("{%s}text" % NS_STREAMS_ERR) == "Spamming the room", dump(err)
    # Only that resource: the other one, on the main frontend, goes on.
    assert stay.ping("localhost").get("type") == "result"
    assert set(session_rows(stack, u.jid)) == {stay.jid}
    # It can log in again afterwards.
    again = login(u, resource="gone", port=fe2.port)
    assert set(session_rows(stack, u.jid)) == {stay.jid, again.jid}


def test_kick_bare_jid_ends_every_resource(stack, login, new_user, extra_frontend):
    fe2 = extra_frontend()
    u, other = new_user(), new_user()
    r1 = login(u, resource="one")
    r2 = login(u, resource="two", port=fe2.port)
    o = login(other, resource="o")
    out = ctl_ok(stack, "kick", u.jid)
    assert sorted(out.split()) == sorted(["kicked", r1.jid, "kicked", r2.jid]), out
    for c in (r1, r2):
        err = c.expect_stream_error("policy-violation")
        assert err.findtext("{%s}text" % NS_STREAMS_ERR), dump(err)
    assert session_rows(stack, u.jid) == {}
    assert o.ping("localhost").get("type") == "result"
    r = stack.ctl("kick", u.jid)
    assert r.returncode == 1 and "has no session" in r.stderr, (r.returncode, r.stderr)


def test_stats_counts_sessions_frontends_and_stanzas(stack, login, new_user, extra_frontend):
    fe2 = extra_frontend()
    u, v = new_user(), new_user()
    a = login(u, resource="a", port=fe2.port)
    b = login(v, resource="b", port=fe2.port, priority=False)
    key = "frontend %s" % fe2.name
    s = wait_until(lambda: (lambda x: x if x.get(key) == "2 sessions" else None)(stats(stack)),
                   "%s: 2 sessions" % key)
    assert int(s["frontends"]) >= 2 and "frontend fe1" in s, s
    sessions, available = int(s["sessions"]), int(s["available sessions"])
    assert sessions >= 2 and available >= 1 and available < sessions, s
    assert s["redis"] == "connected", s
    total = int(s["stanzas since start"])
    for i in range(40):
        a.message(b.jid, "count %d" % i)
    b.wait_message("count 39")
    s2 = stats(stack)
    assert int(s2["stanzas since start"]) >= total + 40, (s, s2)
    rate = re.fullmatch(r"([0-9.]+) \(last 10 s\)", s2["stanzas per second"])
    assert rate, s2
    # The 40 stanzas fall in the last 10 full seconds once the current one is over.
    time.sleep(1.1)
    assert float(re.match(r"[0-9.]+", stats(stack)["stanzas per second"]).group()) >= 4.0
    b.close()
    wait_until(lambda: stats(stack).get(key) == "1 sessions", "%s: 1 sessions" % key)


def test_stats_and_user_count_stored_offline_messages(stack, login, new_user):
    u, offline = new_user(), new_user()
    a = login(u, resource="a")
    before = int(stats(stack)["offline messages stored since start"])
    a.message(offline.jid, "while you were out")
    a.iq("set", "<query xmlns='jabber:iq:roster'><item jid='%s'/></query>" % offline.jid)
    wait_until(lambda: int(stats(stack)["offline messages stored since start"]) == before + 1,
               "the offline counter to grow by one")
    out = ctl_ok(stack, "user", offline.jid)
    assert "exists: yes\n" in out and "offline messages: 1\n" in out, out
    assert "roster items: 0\n" in out and "tombstone: none\n" in out, out
    assert "sessions: 0\n" in out, out
    out = ctl_ok(stack, "user", u.jid)
    assert "roster items: 1\n" in out and "offline messages: 0\n" in out, out
    assert "sessions: 1\n" in out, out


def test_user_shows_a_tombstone_and_unknown_accounts(stack):
    jid = "ghost%d@localhost" % int(time.time() * 1000)
    out = ctl_ok(stack, "user", jid)
    assert "exists: no\n" in out and "tombstone: none\n" in out, out
    stack.redis.command("SET", "%stombstone:{%s}" % (REDIS_PREFIX, jid), "1765000000")
    out = ctl_ok(stack, "user", jid)
    assert "tombstone: deleted 2025-12-06T05:46:40Z\n" in out, out
    for bad in (jid + "/res", "nobody@elsewhere.example", "@localhost"):
        r = stack.ctl("user", bad)
        assert r.returncode == 1 and bad in r.stderr, (bad, r.returncode, r.stderr)


def test_announce_reaches_available_users_as_headline(stack, login, new_user, extra_frontend):
    fe2 = extra_frontend()
    u, v, w = new_user(), new_user(), new_user()
    a = login(u, resource="a")
    b = login(v, resource="b", port=fe2.port)
    quiet = login(w, resource="quiet", priority=False)   # connected, not available
    out = ctl_ok(stack, "announce", "Maintenance", "at", "<noon> & after")
    n = int(re.match(r"announced to (\d+) sessions", out).group(1))
    assert n >= 2, out
    for c in (a, b):
        m = c.wait_for(lambda e: e.tag == MESSAGE_TAG and e.get("type") == "headline",
                       what="the announcement")
        assert m.get("from") == "localhost" and m.get("to") == c.jid, dump(m)
        assert m.findtext(NS + "body") == "Maintenance at <noon> & after", dump(m)
    quiet.expect_nothing(lambda e: e.tag == MESSAGE_TAG, 0.5)


def test_unknown_command_and_usage_errors(stack):
    r = stack.ctl("admin", "frobnicate")
    assert r.returncode == 1 and "unknown command 'frobnicate'" in r.stderr, r.stderr
    r = stack.ctl("admin", "stats", "extra")
    assert r.returncode == 1 and "usage: stats" in r.stderr, r.stderr
    out = ctl_ok(stack, "admin", "help")
    for cmd in ("sessions", "kick", "stats", "user", "announce", "help"):
        assert re.search(r"^%s\b" % cmd, out, re.M), out


def test_router_not_running_is_a_clear_error(stack):
    port = free_port()
    start = time.monotonic()
    r = stack.ctl("stats", env={"admin_connect": "tcp://127.0.0.1:%d" % port,
                                "admin_timeout": "1000"})
    took = time.monotonic() - start
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "cannot reach the session router at tcp://127.0.0.1:%d" % port in r.stderr, r.stderr
    assert "is it running?" in r.stderr, r.stderr
    assert took < 5, took


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "127.0.0.1.example.net"])
def test_non_loopback_admin_bind_needs_curve(stack, secure, host):
    s = secure()
    err = expect_refused_start(stack, "session-router", s.config,
                               dict(s.env, admin_bind="tcp://%s:%d" % (host, free_port())),
                               "admin_bind")
    assert "link_curve" in err, err


def test_admin_endpoint_with_curve(stack, secure):
    s = secure()
    _, rt = keygen(stack, "router")
    _, fe = keygen(stack, "frontend")
    _, good = keygen(stack, "admin")
    _, bad = keygen(stack, "admin")
    text, _ = keygen(stack, "admin")
    assert "admin_curve_public = " in text and "admin_curve_secret = " in text, text
    s.start_redis()
    admin = "tcp://127.0.0.1:%d" % free_port()
    _, log = s.start_router(allow_error_lines=True, link_curve="true",
                            router_curve_secret=rt["router_curve_secret"],
                            router_curve_allow=fe["frontend_curve_public"],
                            admin_bind=admin, admin_curve_allow=good["admin_curve_public"])
    wait_log(log, r"admin: listening for xmppctl on .* \(CURVE\)")
    env = {"link_curve": "true", "admin_connect": admin, "admin_timeout": "1500",
           "router_curve_public": rt["router_curve_public"]}
    r = s.ctl("stats", env=dict(env, admin_curve_secret=good["admin_curve_secret"]))
    assert r.returncode == 0 and "sessions: 0" in r.stdout, (r.returncode, r.stdout, r.stderr)
    # A key the router does not list: refused by ZAP, so no answer ever comes.
    r = s.ctl("stats", env=dict(env, admin_curve_secret=bad["admin_curve_secret"]))
    assert r.returncode == 1 and "cannot reach the session router" in r.stderr, r.stderr
    assert "admin_curve_allow" in r.stderr, r.stderr
    wait_log(log, r"admin: refused an admin client .*CURVE key %s is not in admin_curve_allow"
             % re.escape(bad["admin_curve_public"]))
    # A frontend's key does not open the admin endpoint.
    r = s.ctl("stats", env=dict(env, admin_curve_secret=fe["frontend_curve_secret"]))
    assert r.returncode == 1, r.stderr
    # No key at all: xmppctl says which key is missing before it tries.
    r = s.ctl("stats", env=env)
    assert r.returncode == 1 and "admin_curve_secret" in r.stderr, r.stderr
    # The link's plain NULL mechanism is refused too.
    r = s.ctl("stats", env={"admin_connect": admin, "admin_timeout": "1000"})
    assert r.returncode == 1 and "cannot reach" in r.stderr, r.stderr
    assert "admitted an admin client" in read_log(log)

"""bench/linkgen.c, the router's own benchmark (bench/README.md, "The router alone"), speaks
the link as c2s-frontend does: its stand-in frontends say hello, bind sessions, and the
chat messages they send each other come back as deliveries; with --offline the messages
to a user without a session are stored, and that user reads them at login. A change of
the link protocol that the generator does not follow fails here, not in a benchmark."""

import re
import subprocess

import pytest

from conftest import DOMAIN, VALGRIND, User, build_dir, unique_name
from xmpp_client import XMPPClient


def linkgen():
    path = build_dir() / "linkgen"
    if not path.exists():
        pytest.skip("%s is not built (make %s)" % (path, path))
    return str(path)


def accounts(ps, n):
    """n accounts PREFIX0 .. PREFIXn-1, as linkgen names them."""
    prefix = unique_name("lk") + "x"
    users = []
    for i in range(n):
        u = User("%s%d" % (prefix, i), "pw-linkgen")
        r = ps.ctl("adduser", u.jid, u.password)
        assert r.returncode == 0, r.stderr
        users.append(u)
    return prefix, users


def run(ps, prefix, *args):
    out = subprocess.run([linkgen(), "--endpoint", "tcp://127.0.0.1:%d" % ps.router_port,
                          "--domain", DOMAIN, "--prefix", prefix, "--settle", "0.5",
                          "--watch", str(ps.router.pid), *args],
                         capture_output=True, text=True, timeout=60)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, (out.returncode, out.stdout, out.stderr)
    fields = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
    return out.returncode, fields, out


def test_stand_in_frontends_route_chat_pairs_through_the_router(private_stack):
    ps = private_stack
    prefix, _ = accounts(ps, 4)
    rc, f, out = run(ps, prefix, "--frontends", "2", "--pairs", "2", "--window", "5",
                     "--duration", "1")
    assert rc == 0, (out.stdout, out.stderr)
    assert int(f["received"]) > 20 and int(f["received"]) == int(f["sent"]), f
    assert f["lost"] == "0" and f["errors"] == "0" and f["bad"] == "0", f
    # Each session's initial presence came back to it (RFC 6121 4.2.2).
    assert f["presences"] == "4", f
    # The router's CPU was read, whole and by thread.
    # (Under valgrind the process is valgrind's tool, named for it.)
    assert f["comm0"] == ("memcheck-amd64-" if VALGRIND else "session-router"), f
    assert float(f["cpu_ms0"]) >= float(f["main_ms0"]) >= 0, f


def test_rate_mode_sends_what_was_asked(private_stack):
    ps = private_stack
    prefix, _ = accounts(ps, 4)
    rc, f, out = run(ps, prefix, "--frontends", "1", "--pairs", "2", "--rate", "200",
                     "--duration", "1")
    assert rc == 0, (out.stdout, out.stderr)
    assert 150 <= int(f["sent"]) <= 250 and f["lost"] == "0", f


def test_offline_messages_are_stored_for_the_user_without_a_session(private_stack):
    ps = private_stack
    prefix, users = accounts(ps, 4)
    rc, f, out = run(ps, prefix, "--offline", "--frontends", "2", "--pairs", "2",
                     "--window", "3", "--rate", "100", "--duration", "1")
    assert rc == 0, (out.stdout, out.stderr)
    assert f["scenario"] == "link-offline" and f["sent"] == "6" and f["errors"] == "0", f
    # The second of the first pair logs in and gets the three messages of the first.
    c = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile, timeout=5.0)
    try:
        c.login(users[2].localpart, users[2].password, resource="r")
        c.presence(0)
        got = []
        for _ in range(3):
            m = c.wait_for(lambda el: el.tag.endswith("message")
                           and (el.get("from") or "").startswith(users[0].jid),
                           what="an offline message from %s" % users[0].jid)
            got.append(re.sub(r"\s+", " ", "".join(m.itertext())))
        assert all(t.startswith("bench message") for t in got), got
    finally:
        c.close()

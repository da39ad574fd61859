"""Calls on the deployment topology (deploy/stack, like compose): the router names the
stack's coturn in its XEP-0215 answer, and coturn's own client allocates relays there with
the credentials a user got through HAProxy and a frontend."""

import re
import shutil
import subprocess

import pytest

NS_EXTDISCO = "urn:xmpp:extdisco:2"
UCLIENT = shutil.which("turnutils_uclient")

pytestmark = pytest.mark.skipif(not (shutil.which("turnserver") and UCLIENT),
                                reason="coturn is not installed (tools/install-deps.sh)")


def test_xep0215_names_the_stacks_coturn_and_it_relays(lstack, clients):
    u = lstack.new_user("turn")
    c = clients()
    c.login(u.localpart, u.password)
    res = c.iq("get", "<services xmlns='%s'/>" % NS_EXTDISCO, to="localhost")
    assert res.get("type") == "result"
    got = [dict(s.attrib) for s in res.iter("{%s}service" % NS_EXTDISCO)]
    port = str(lstack.base + 4)
    assert sorted((s["type"], s["host"], s["port"], s["transport"]) for s in got) == [
        ("stun", "127.0.0.1", port, "udp"), ("turn", "127.0.0.1", port, "tcp"),
        ("turn", "127.0.0.1", port, "udp")], got
    turn = [s for s in got if s["type"] == "turn" and s["transport"] == "udp"][0]
    assert turn["username"].endswith(":" + u.jid) and turn["password"], turn
    # Two clients allocate a relay each on the stack's coturn and send through them.
    r = subprocess.run([UCLIENT, "-y", "-c", "-n", "1", "-p", port, "-u", turn["username"],
                        "-w", turn["password"], "127.0.0.1"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "Cannot complete Allocation" not in r.stdout, r.stdout
    recv = re.findall(r"tot_recv_msgs=(\d+)", r.stdout)
    assert recv and int(recv[-1]) > 0, r.stdout

"""Through a load balancer (a running stack: XMPP_HOST/XMPP_PORT, and XMPP_TLS_PORT for its
XEP-0368 direct TLS port): many clients spread over the frontends all reach each other, and
direct TLS works end to end. Skipped against the private test stack, which has no balancer."""

import os
import shlex
import subprocess
import uuid

import pytest

from xmpp_client import NS_TLS, q

pytestmark = pytest.mark.skipif(
    not os.environ.get("XMPP_TLS_PORT"),
    reason="load-balancer tests: need a running stack (XMPP_HOST, XMPP_PORT, XMPP_TLS_PORT)")


def test_many_clients_through_the_balancer_reach_each_other(stack, login, new_user):
    # Consecutive connections are spread over the frontends (leastconn), so these eight
    # sessions sit on different frontends; each pair must still talk.
    users = [new_user("lb") for _ in range(4)]
    cs = [login(u, resource="r%d" % i) for i, u in enumerate(users)]
    cs += [login(u, resource="s%d" % i) for i, u in enumerate(users)]
    for i, a in enumerate(cs):
        b = cs[(i + 3) % len(cs)]
        token = "lb-%s" % uuid.uuid4().hex[:8]
        a.message(b.jid, token)
        assert b.wait_message(token).get("from") == a.jid


def test_direct_tls_port_through_the_balancer(stack, clients, new_user):
    u = new_user("dt")
    c = clients(int(os.environ["XMPP_TLS_PORT"]))
    ctx = c.ssl_context()
    ctx.set_alpn_protocols(["xmpp-client"])
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    c.tls = True
    features = c.open_stream()
    assert features.find(q(NS_TLS, "starttls")) is None
    assert c.auth(u.localpart, u.password) == "success"
    c.bind("direct")
    assert c.ping().get("type") == "result"


@pytest.mark.skipif(not os.environ.get("XMPP_RESTART_ROUTER_CMD"),
                    reason="router restart through the balancer: set XMPP_RESTART_ROUTER_CMD "
                           "(e.g. 'docker-compose restart router' or 'deploy/stack restart router')")
def test_router_restart_through_the_balancer(stack, login, new_user):
    a, b = new_user("rr"), new_user("rr")
    ca = login(a, resource="a")
    cb = login(b, resource="b")
    r = subprocess.run(shlex.split(os.environ["XMPP_RESTART_ROUTER_CMD"]), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # Nobody was disconnected; messages (sent at once, buffered if the frontends have not
    # found the new router yet) flow again, both ways and to a bare JID.
    ca.message(cb.jid, "after the router restart")
    assert cb.wait_message("after the router restart", timeout=30).get("from") == ca.jid
    cb.message(a.jid, "back to your bare JID")
    assert ca.wait_message("back to your bare JID", timeout=10).get("from") == cb.jid
    assert not ca.eof and not cb.eof

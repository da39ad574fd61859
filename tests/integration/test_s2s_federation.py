"""Federation between two servers of ours (issue #17): two private stacks, each with its own
Redis, router and one frontend serving c2s and s2s, for domains of their own, with
certificates from a test CA both trust (SASL EXTERNAL, XEP-0178) and s2s_static_hosts naming
each other's s2s port. Users of each add each other, chat, see presence, get messages that
waited offline, ask the other server; then one server is restarted and federation comes back.
"""

import uuid
from contextlib import ExitStack

import prosody_peer as pp
from conftest import free_port, wait_port
from s2s_helpers import (befriend_chat_presence, online, opened,  # noqa: F401 (fixtures)
                         our_server, pki, wait_login)
from xmpp_client import q

NS_VERSION = "jabber:iq:version"


def two_servers(stack, pki, tag):
    """(ExitStack, a, b): our servers for TAG-a.example and TAG-b.example, each reaching
    the other by s2s_static_hosts."""
    da, db = "%s-a.example" % tag, "%s-b.example" % tag
    pa, pb = free_port(), free_port()
    es = ExitStack()
    try:
        a = es.enter_context(our_server(stack, tag + "a", da, pki.ca.issue(da), pki.ca.cafile,
                                        "certificate", s2s_port=pa,
                                        static_hosts={db: "127.0.0.1:%d" % pb}))
        b = es.enter_context(our_server(stack, tag + "b", db, pki.ca.issue(db), pki.ca.cafile,
                                        "certificate", s2s_port=pb,
                                        static_hosts={da: "127.0.0.1:%d" % pa}))
    except BaseException:
        es.close()
        raise
    return es, a, b


def test_two_of_our_servers_federate(stack, pki, opened):
    """What two users on two servers of ours try first: add each other, chat both ways,
    see presence; a message to a user who went offline waits for them, stamped with the
    time it was stored (XEP-0203); and a user can ask the other server (jabber:iq:version)."""
    es, sa, sb = two_servers(stack, pki, "fed")
    with es:
        ua, ub = sa.new_user("fa"), sb.new_user("fb")
        a = online(opened, sa, ua, "a")
        b = online(opened, sb, ub, "b")
        befriend_chat_presence(a, b)

        # b leaves; a writes to the bare JID: stored on b's server, delivered at next login.
        # (a's server connection to b's is one ordered stream: once b's server answered the
        # iq a sent after the message, it has stored the message.)
        a.im_presence()  # available again (presence_both_ways ended it): b's server answers
        a.im_wait_presence(sender=b.jid, timeout=pp.WAIT)  # the probe with b's presence
        b.end_stream()
        a.im_wait_presence(sender=b.jid, type_="unavailable", timeout=pp.WAIT)
        body = "while you were away " + uuid.uuid4().hex[:8]
        a.message(ub.jid, body)
        res = a.iq("get", "<query xmlns='%s'/>" % NS_VERSION, to=sb.domain, timeout=pp.WAIT)
        assert res.get("type") == "result", pp.dump(res)
        b2 = online(opened, sb, ub, "b2")
        m = b2.im_wait_message(body, sender=a.jid, timeout=pp.WAIT)
        assert m.find(q("urn:xmpp:delay", "delay")) is not None, \
            "an offline message without its delay stamp: %s" % pp.dump(m)

        # What b's server answered a: its software version.
        assert res.get("from") == sb.domain, pp.dump(res)
        assert res.find(q(NS_VERSION, "query")).findtext(q(NS_VERSION, "name")), pp.dump(res)


def test_federation_comes_back_after_a_restart(stack, pki, opened):
    """One server is restarted (its router and frontend; Redis keeps the rosters): the
    subscriptions made before hold, presence and messages flow again both ways over new
    server connections."""
    es, sa, sb = two_servers(stack, pki, "fedr")
    with es:
        ua, ub = sa.new_user("ra"), sb.new_user("rb")
        a = online(opened, sa, ua, "a")
        b = online(opened, sb, ub, "b")
        pp.befriend(a, b)
        pp.chat(a, b, "before the restart")
        b.end_stream()
        a.im_wait_presence(sender=b.jid, type_="unavailable", timeout=pp.WAIT)

        # Server b goes away and comes back on the same ports.
        problems = sb.frontend.stop()
        sb.stop_router()
        assert not problems, "\n".join(problems)
        sb.start_router()
        sb.start_frontend(**sb.s2s_env)
        for port in (sb.frontend.port, sb.s2s_port):
            wait_port(port, 30, sb.frontend.proc, sb.frontend.log)
        wait_login(sb, sb.new_user("probe"))

        b2 = online(opened, sb, ub, "b2")
        # b's initial presence reaches a (b's server probes and broadcasts to a), and a's
        # presence reaches b (a's server answers the probe).
        a.im_wait_presence(sender=b2.jid, timeout=pp.WAIT)
        b2.im_wait_presence(sender=a.jid, timeout=pp.WAIT)
        items = b2.roster(timeout=pp.WAIT)
        assert items.get(ua.jid, {}).get("subscription") == "both", items
        pp.chat(a, b2, "after the restart " + uuid.uuid4().hex[:8])
        pp.chat(b2, a, "and back " + uuid.uuid4().hex[:8])

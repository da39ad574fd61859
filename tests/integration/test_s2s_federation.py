"""Federation between two servers of ours (issue #17): two private stacks, each with its own
Redis, router and one frontend serving c2s and s2s, for domains of their own, with
certificates from a test CA both trust (SASL EXTERNAL, XEP-0178) and s2s_static_hosts naming
each other's s2s port. Users of each add each other, chat, see presence, get messages that
waited offline, ask the other server; then one server is restarted and federation comes back.
"""

import socket
import threading
import time
import uuid
from contextlib import ExitStack

import prosody_peer as pp
from conftest import free_port, wait_port
from s2s_helpers import (befriend_chat_presence, online, opened,  # noqa: F401 (fixtures)
                         our_server, pki, wait_login)
from xmpp_client import NS_CLIENT, q, stanza_error_condition

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


class Gate:
    """A TCP port in front of another server's: while shut it takes connections and says
    nothing (a server that does not answer yet: the stanzas wait in the frontend that
    connects); once opened, every new connection is relayed to the target port."""

    def __init__(self, target_port=None):
        self.target_port = target_port
        self.opened = False
        self.held = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.opened:
                self.held.append(conn)
                continue
            up = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


def holder(frontends, local, remote, timeout=pp.WAIT):
    """The s2s frontend that is connecting from `local` to `remote` (its log says so)."""
    deadline = time.monotonic() + timeout
    line = "s2s: %s -> %s: connecting to" % (local, remote)
    while time.monotonic() < deadline:
        for fe in frontends:
            if line in fe.log.read_text(errors="replace"):
                return fe
        time.sleep(0.1)
    raise AssertionError("no s2s frontend of %s connects to %s" % (local, remote))


def test_stanzas_of_a_killed_s2s_frontend_are_not_lost(stack, pki, opened):
    """Issue #17, failure behaviour: an s2s frontend killed with SIGKILL while stanzas wait
    in it for their connection. The router had kept them unconfirmed: they go out again
    through the other s2s frontend, which connects anew, and the recipient gets them; a
    stanza sent after the kill goes through the other frontend at once. With no s2s
    frontend left, the sender gets remote-server-timeout instead of silence."""
    da, db, dc = "kill-a.example", "kill-b.example", "kill-c.example"
    pb = free_port()
    with ExitStack() as es:
        sb = es.enter_context(our_server(stack, "killb", db, pki.ca.issue(db), pki.ca.cafile,
                                         "certificate", s2s_port=pb))
        gate_b, gate_c = Gate(pb), Gate()
        es.callback(gate_b.close)
        es.callback(gate_c.close)
        sa = es.enter_context(our_server(
            stack, "killa", da, pki.ca.issue(da), pki.ca.cafile, "certificate",
            static_hosts={db: "127.0.0.1:%d" % gate_b.port, dc: "127.0.0.1:%d" % gate_c.port},
            s2s_frontends=2, router_env={"frontend_timeout": "2000"},
            s2s_env={"s2s_connect_timeout": "120"}))
        ua, ub = sa.new_user("ka"), sb.new_user("kb")
        a = online(opened, sa, ua, "a")
        b = online(opened, sb, ub, "b")

        # The first message waits in the frontend that connects to b's server (the gate
        # does not answer yet); that frontend is killed.
        first = "waited in the killed frontend " + uuid.uuid4().hex[:8]
        a.message(ub.jid, first)
        killed = holder(sa.s2s_frontends, da, db)
        other = next(fe for fe in sa.s2s_frontends if fe is not killed)
        gate_b.opened = True
        killed.kill()
        second = "sent after the kill " + uuid.uuid4().hex[:8]
        a.message(ub.jid, second)
        # In either order: the second went at once, the first once the router gave the
        # killed frontend up (frontend_timeout).
        got = []
        while len(got) < 2:
            m = b.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) in (first, second),
                           what="the two messages", timeout=pp.WAIT)
            assert m.get("from") == a.jid and m.get("type") == "chat", pp.dump(m)
            got.append(m.findtext(q(NS_CLIENT, "body")))
        assert sorted(got) == sorted([first, second]), got

        # The last s2s frontend is killed holding a stanza for a server that never
        # answers: the sender is told.
        mid = a.message("someone@" + dc, "nobody will carry this")
        assert holder([other], da, dc) is other
        other.kill()
        err = a.wait_for(lambda e: e.get("id") == mid and e.get("type") == "error",
                         what="the bounce", timeout=pp.WAIT)
        assert stanza_error_condition(err) == ("wait", "remote-server-timeout"), pp.dump(err)
        assert not [e for e in a.skipped if e.get("type") == "error"], \
            [pp.dump(e) for e in a.skipped]

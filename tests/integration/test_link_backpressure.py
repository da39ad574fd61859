"""A full pipe on the frontend-router link never drops a stanza in silence
(docs/PROTOCOL.md, "Behaviour"): a frontend that stops reading (SIGSTOP) while a client on
another frontend floods one of its clients fills the router's pipe to it (link_hwm); every
message then either reaches the recipient once the frontend reads again, or comes back to
its sender as an error of type wait with <resource-constraint/>."""

import re
import signal
import time

import pytest

from conftest import (READY_TIMEOUT, VALGRIND, Frontend, PrivateStack, read_log, skip_remote,
                      unique_name, wait_port)
from xmpp_client import NS_CLIENT, XMPPClient, q, stanza_error_condition

MESSAGE = q(NS_CLIENT, "message")
BIG = 256 * 1024 * 1024  # output buffers that hold every bounce and delivery at once


def test_full_pipe_to_a_stopped_frontend_bounces_never_drops(stack):
    if getattr(stack, "remote", False):
        skip_remote("stops a frontend of its own")
    if VALGRIND:
        pytest.skip("the frontend must stay stopped for less than the ZMTP heartbeat timeout")
    ps = PrivateStack(stack, unique_name("hwm"))
    # The router queues at most 20 messages for one frontend; a frontend silent for a
    # while is not swept meanwhile.
    ps.env.update({"link_hwm": "20", "frontend_timeout": "60000"})
    fe_b = None
    clients = []
    try:
        ps.start_redis()
        ps.start_router()
        fe_a = ps.start_frontend(link_hwm="100000", max_bytes_per_second="0",
                                 max_output_buffer=str(BIG))
        stack._extra += 1
        env_b = dict(ps.env, link_hwm="100000", max_output_buffer=str(BIG))
        fe_b = Frontend(stack, "hwm-b%d" % stack._extra, env_b)
        fe_b.allow_error_lines = True
        wait_port(fe_a.port, READY_TIMEOUT, fe_a.proc, fe_a.log)
        wait_port(fe_b.port, READY_TIMEOUT, fe_b.proc, fe_b.log)
        alice, bob = ps.new_user("flood"), ps.new_user("stopped")
        ps.wait_login(alice)
        sender = XMPPClient(fe_a.port, cafile=stack.cafile)
        clients.append(sender)
        sender.login(alice.localpart, alice.password, resource="a")
        receiver = XMPPClient(fe_b.port, cafile=stack.cafile)
        clients.append(receiver)
        receiver.login(bob.localpart, bob.password, resource="b")
        sender.message(receiver.jid, "ready?", id="sync")
        receiver.wait_message("ready?", timeout=8)

        body = "x" * (24 * 1024)
        n = 300  # 7 MB: more than the kernel's socket buffers and the 20 queued messages
        ids = ["m%d" % i for i in range(n)]
        fe_b.proc.send_signal(signal.SIGSTOP)
        bounced = set()
        try:
            for mid in ids:
                sender.message(receiver.jid, body, id=mid)
            # At least one bounce, then the frontend reads again (well within the 3 s after
            # which ZMTP heartbeats would end its connection).
            el = sender.wait_for(lambda e: e.tag == MESSAGE and e.get("type") == "error",
                                 timeout=1.5, what="a bounce while the frontend is stopped")
            bounced.add(el.get("id"))
            err = el
        finally:
            fe_b.proc.send_signal(signal.SIGCONT)
        assert stanza_error_condition(err) == ("wait", "resource-constraint")
        assert err.get("from") == receiver.jid

        received = set()
        deadline = time.monotonic() + 90
        quiet_since = time.monotonic()
        while (len(received) + len(bounced) < n and time.monotonic() < deadline
               and time.monotonic() - quiet_since < 10):
            progress = False
            for c, is_sender in ((sender, True), (receiver, False)):
                try:
                    el = c.recv(timeout=0.2)
                except TimeoutError:
                    continue
                progress = True
                if el.tag != MESSAGE:
                    continue
                if is_sender and el.get("type") == "error":
                    assert stanza_error_condition(el) == ("wait", "resource-constraint")
                    assert el.get("id") not in bounced, "bounced twice: %s" % el.get("id")
                    bounced.add(el.get("id"))
                elif not is_sender and el.get("id") in ids:
                    assert el.get("id") not in received, "delivered twice: %s" % el.get("id")
                    received.add(el.get("id"))
            if progress:
                quiet_since = time.monotonic()
            else:
                time.sleep(0.05)
        missing = set(ids) - received - bounced
        # A bounce travels on the router's pipe to the sender's frontend, which can be full
        # too (link_hwm is 20 here): the router then counts it as lost and logs it; nothing
        # else may be missing.
        receiver.message(sender.jid, "still here")
        sender.wait_message("still here", timeout=8)
        ps.stop_router(allow_error_lines=False)
        log = read_log(ps.router_logs[-1])
        m = re.search(r"delivery: (\d+) stanzas bounced to their senders and (\d+) server "
                      r"stanzas lost since start", log)
        assert m, log[-3000:]
        lost = int(m.group(2))
        assert len(missing) == lost, "%d messages neither delivered nor bounced (%d " \
            "delivered, %d bounced, %d bounces lost), e.g. %s" \
            % (len(missing), len(received), len(bounced), lost, sorted(missing)[:5])
        assert int(m.group(1)) == len(bounced) + lost
        assert not received & bounced, "both delivered and bounced: %s" % sorted(received & bounced)[:5]
        assert bounced and received
        assert "bounced with resource-constraint: its frontend's pipe is full" in log, log[-3000:]
        assert not sender.eof and not receiver.eof
    finally:
        for c in clients:
            c.close()
        problems = []
        if fe_b is not None:
            problems += fe_b.stop()
        problems += ps.stop()
    assert not problems, "\n".join(problems)

"""Prometheus metrics (README, "Metrics"): /metrics of the frontend and the router, parsed
with the Prometheus client library's text parser, against traffic the test counts itself;
only /metrics is served; no port is opened while metrics_listen is empty; a bad
metrics_listen is refused naming the key."""
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (READY_TIMEOUT, clean_env, free_port, running_private_stack, skip_remote,
                      wait_port)

N_MESSAGES = 25


def scrape(port):
    """{(sample name, ((label, value), ...)): value} of http://127.0.0.1:port/metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode("utf-8")
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def val(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, "no sample %s%r in /metrics" % (name, labels)
    return samples[key]


def wait_value(port, name, want, timeout=READY_TIMEOUT, **labels):
    """Scrapes until name{labels} == want (gauges follow what the processes see)."""
    deadline = time.monotonic() + timeout
    while True:
        got = val(scrape(port), name, **labels)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def listening_ports(pid):
    """TCP ports in LISTEN state on sockets the process holds (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def metrics_stack(stack):
    """A private Redis, router and frontend, each serving /metrics on its own port
    (attributes router_metrics and fe_metrics)."""
    if getattr(stack, "remote", False):
        skip_remote("starts its own router and frontend with metrics_listen")
    router_metrics, fe_metrics = free_port(), free_port()
    with running_private_stack(stack, "metrics",
                               {"metrics_listen": "127.0.0.1:%d" % router_metrics},
                               {"metrics_listen": "127.0.0.1:%d" % fe_metrics}) as ps:
        ps.router_metrics, ps.fe_metrics = router_metrics, fe_metrics
        wait_port(router_metrics, READY_TIMEOUT, ps.router, ps.router_logs[-1])
        wait_port(fe_metrics, READY_TIMEOUT, ps.frontend.proc, ps.frontend.log)
        yield ps


def test_counters_follow_traffic(metrics_stack, login, clients):
    ps = metrics_stack
    alice, bob, carol = ps.new_user("ma"), ps.new_user("mb"), ps.new_user("mc")
    # Probe logins of the fixture are over: no session is left once they are closed.
    assert wait_value(ps.fe_metrics, "xmpp_sessions", 0) == 0
    fe0, rt0 = scrape(ps.fe_metrics), scrape(ps.router_metrics)

    a = login(alice, port=ps.frontend.port)
    b = login(bob, port=ps.frontend.port)
    for i in range(N_MESSAGES):
        a.message(b.jid, "m%d" % i)
    for i in range(N_MESSAGES):
        b.wait_message("m%d" % i, sender=a.jid)
    # One message to an account that is offline: stored (RFC 6121 8.5.2.1.1).
    a.message("%s@localhost" % carol.localpart, "for later")
    # One wrong password.
    c = clients(ps.frontend.port)
    c.open_stream()
    c.starttls()
    assert c.auth_scram(carol.localpart, "wrong-" + uuid.uuid4().hex) == "not-authorized"

    # Gauges: exactly the two bound sessions, on the frontend and on the router, whose
    # count per frontend carries the frontend's name.
    assert wait_value(ps.fe_metrics, "xmpp_sessions", 2) == 2
    assert wait_value(ps.router_metrics, "xmpp_sessions", 2) == 2
    assert wait_value(ps.router_metrics, "xmpp_router_sessions", 2,
                      frontend=ps.frontend.name) == 2
    assert wait_value(ps.router_metrics, "xmpp_offline_messages_stored_total",
                      val(rt0, "xmpp_offline_messages_stored_total") + 1) == \
        val(rt0, "xmpp_offline_messages_stored_total") + 1
    fe, rt = scrape(ps.fe_metrics), scrape(ps.router_metrics)

    def delta(now, before, name, **labels):
        return val(now, name, **labels) - val(before, name, **labels)

    # Counted traffic: N messages plus one sync message per login, one to carol.
    sent = N_MESSAGES + 2 + 1
    assert delta(fe, fe0, "xmpp_stanzas_in_total", kind="message") == sent
    assert delta(rt, rt0, "xmpp_stanzas_in_total", kind="message") == sent
    assert delta(fe, fe0, "xmpp_stanzas_in_total", kind="presence") == 2
    assert delta(rt, rt0, "xmpp_stanzas_out_total", kind="message") >= N_MESSAGES + 2
    assert delta(fe, fe0, "xmpp_stanzas_out_total", kind="message") >= N_MESSAGES + 2
    # Logins: alice and bob with SCRAM-SHA-256; the wrong password once.
    assert delta(fe, fe0, "xmpp_auth_total", mechanism="SCRAM-SHA-256", result="success") == 2
    assert delta(fe, fe0, "xmpp_auth_total", mechanism="SCRAM-SHA-256", result="failure") == 1
    assert delta(fe, fe0, "xmpp_auth_total", mechanism="PLAIN", result="success") == 0
    assert delta(fe, fe0, "xmpp_tls_handshakes_total", result="ok") == 3
    assert delta(fe, fe0, "xmpp_connections_accepted_total") == 3
    assert val(fe, "xmpp_connections") >= 3
    # The link carried at least every stanza each way, and the two ends agree on bytes
    # within the heartbeats in flight.
    assert delta(fe, fe0, "xmpp_link_messages_total", direction="out") >= sent + 2
    assert delta(rt, rt0, "xmpp_link_messages_total", direction="in") >= sent + 2
    assert delta(rt, rt0, "xmpp_link_bytes_total", direction="out") >= \
        N_MESSAGES * len("<message/>")
    assert val(fe, "xmpp_link_buffered_stanzas") == 0
    assert val(fe, "xmpp_output_buffer_bytes") >= 0
    # Redis commands were timed: the buckets are cumulative and end with the count.
    count = val(rt, "xmpp_redis_command_duration_seconds_count")
    assert count > val(rt0, "xmpp_redis_command_duration_seconds_count")
    assert val(rt, "xmpp_redis_command_duration_seconds_bucket", le="+Inf") == count
    assert val(rt, "xmpp_redis_command_duration_seconds_sum") > 0
    assert val(rt, "xmpp_redis_up") == 1
    # Declared for registration and account deletion, nothing counted yet.
    assert val(rt, "xmpp_registrations_total") == 0
    assert val(rt, "xmpp_account_deletions_total") == 0

    # Sessions end: the gauges go back down.
    a.close()
    b.close()
    assert wait_value(ps.fe_metrics, "xmpp_sessions", 0) == 0
    assert wait_value(ps.router_metrics, "xmpp_router_sessions", 0,
                      frontend=ps.frontend.name) == 0


def http_status(port, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=b"x=1" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_only_metrics_is_served(metrics_stack):
    for port in (metrics_stack.fe_metrics, metrics_stack.router_metrics):
        assert http_status(port, "/metrics") == 200
        assert http_status(port, "/") == 404
        assert http_status(port, "/metrics/x") == 404
        assert http_status(port, "/metrics", "POST") == 405
        assert http_status(port, "/metrics", "DELETE") == 405


def test_metrics_port_only_when_configured(metrics_stack, extra_frontend):
    # With metrics_listen: the client port and the metrics port.
    fe0 = metrics_stack.frontend
    on = listening_ports(fe0.proc.pid)
    assert on == {fe0.port, fe0.ws_port, fe0.wss_port, metrics_stack.fe_metrics}
    assert metrics_stack.router_metrics in listening_ports(metrics_stack.router.pid)
    # Off by default: a frontend without it listens on its client ports alone.
    fe = extra_frontend()
    assert listening_ports(fe.proc.pid) == {fe.port, fe.ws_port, fe.wss_port}


@pytest.mark.parametrize("value, why", [
    ("9102", "is not host:port"),
    ("127.0.0.1:", "is not host:port"),
    ("127.0.0.1:http", "is not host:port"),
    ("127.0.0.1:70000", "port out of range"),
    ("no.such.host.invalid:9102", "metrics_listen"),
])
@pytest.mark.parametrize("program", ["c2s-frontend", "session-router"])
def test_bad_metrics_listen_refused(stack, program, value, why):
    if getattr(stack, "remote", False):
        skip_remote("runs the programs with a bad setting")
    env = {"metrics_listen": value, "router_bind": "tcp://127.0.0.1:%d" % free_port(),
           "c2s_listen": "127.0.0.1:%d" % free_port(), "redis_port": free_port()}
    r = subprocess.run([str(stack.bin(program)), "-c", str(stack.config)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=clean_env(env), timeout=60)
    assert r.returncode != 0
    assert "metrics_listen" in r.stderr and why in r.stderr, r.stderr


def test_port_in_use_refused(stack):
    if getattr(stack, "remote", False):
        skip_remote("runs the programs with a bad setting")
    # The stack's own client port is taken: the error names the key and the address.
    value = "127.0.0.1:%d" % stack.port
    env = {"metrics_listen": value, "router_bind": "tcp://127.0.0.1:%d" % free_port(),
           "redis_port": free_port()}
    r = subprocess.run([str(stack.bin("session-router")), "-c", str(stack.config)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=clean_env(env), timeout=30)
    assert r.returncode != 0
    assert "key 'metrics_listen': cannot listen on '%s'" % value in r.stderr, r.stderr

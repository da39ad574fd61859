"""What the federation tests share (test_s2s_prosody.py, test_s2s_federation.py): a
private server of ours serving c2s and s2s for a domain of its own, the certificates of a
test CA (prosody_peer.TestCA), the DNS server of the test (prosody_peer.FakeDNS), clients
ended before their servers stop, and the scenario of a new user."""

import time
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

import prosody_peer as pp
from conftest import (READY_TIMEOUT, Frontend, PrivateStack, free_port, skip_remote, unique_name,
                      wait_port)
from xmpp_client import XMPPClient


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca: the CA every server of the certificate tests trusts; untrusted: a CA nobody
    trusts (its certificates do not verify: dialback)."""
    d = tmp_path_factory.mktemp("s2s-pki")
    return SimpleNamespace(ca=pp.TestCA(d / "ca", "xmpp-itest federation CA"),
                           untrusted=pp.TestCA(d / "untrusted", "xmpp-itest CA nobody trusts"))


@pytest.fixture(scope="module")
def dns():
    d = pp.FakeDNS()
    yield d
    d.close()


@pytest.fixture
def opened():
    """opened(client) -> client, whose stream is ended at the end of the test (the server
    has let the session go before a module fixture stops it: Prosody 0.12 logs an error
    for a client that leaves while it shuts down)."""
    made = []

    def keep(c):
        made.append(c)
        return c
    yield keep
    for c in made:
        try:
            if not c.eof:
                c.end_stream(timeout=3)
        except Exception:  # noqa: BLE001 - a stream the server ended already
            pass
        c.close()


def online(opened, server, user, resource):
    """`user` logged in on `server` (ours or a ProsodyPeer) and online (roster, presence)."""
    c = opened(server.login(user, resource))
    pp.go_online(c)
    return c


@contextmanager
def our_server(stack, tag, domain, cert, trust, auth, static_hosts=None, dns_port=None,
               direct_tls=False, s2s_port=None, s2s_frontends=0, router_env=None,
               s2s_env=None):
    """A private stack of ours (Redis, router, one frontend serving c2s and s2s) for
    `domain` with `cert` (tls_cert/tls_key), trusting `trust` for s2s; auth 'certificate'
    (s2s_secure_auth true) or 'dialback' (false). It reaches other domains through
    static_hosts ({domain: 'host:port' or 'tls:host:port'}, s2s_static_hosts) and/or the DNS
    server on 127.0.0.1:dns_port (s2s_dns_servers); direct_tls: it also serves XEP-0368 on
    s2s_tls_port (s2s_tls_listen). s2s_port: chosen by the caller (so that another server's
    static_hosts can name it before this one starts), else a free one. s2s_frontends: that
    many s2s-only frontends (ps.s2s_frontends, the first on s2s_port) serve s2s, and the
    client frontend does not; router_env: router keys; s2s_env: more s2s keys. Attributes:
    domain, cert, s2s_port, s2s_tls_port, s2s_frontends, new_user(), login()."""
    if getattr(stack, "remote", False):
        skip_remote("starts its own Redis, router and frontend")
    ps = PrivateStack(stack, unique_name(tag))
    ps.env.update(domain=domain, tls_cert=cert.certfile, tls_key=cert.keyfile)
    ps.domain, ps.cert, ps.s2s_port = domain, cert, s2s_port or free_port()
    ps.s2s_tls_port = free_port() if direct_tls else None

    def new_user(prefix="o"):
        user = pp.PeerUser(unique_name(prefix), domain, "pw-" + uuid.uuid4().hex[:12])
        r = ps.ctl("adduser", user.jid, user.password)
        assert r.returncode == 0, r.stderr
        return user

    def login(user, resource="itest", timeout=5.0):
        c = XMPPClient(ps.frontend.port, domain=domain, cafile=cert.cafile, timeout=timeout)
        try:
            c.login(user.localpart, user.password, resource=resource)
        except BaseException:
            c.close()
            raise
        return c
    ps.new_user, ps.login = new_user, login
    s2s = {"s2s_listen": "127.0.0.1:%d" % ps.s2s_port,
           "s2s_ca_file": trust,
           "s2s_secure_auth": "true" if auth == "certificate" else "false",
           "s2s_dialback_secret": uuid.uuid4().hex}
    if static_hosts:
        s2s["s2s_static_hosts"] = ",".join("%s=%s" % kv for kv in sorted(static_hosts.items()))
    if dns_port:
        s2s["s2s_dns_servers"] = "127.0.0.1:%d" % dns_port
    if direct_tls:
        s2s["s2s_tls_listen"] = "127.0.0.1:%d" % ps.s2s_tls_port
    s2s.update(s2s_env or {})
    ps.s2s_frontends = []
    try:
        ps.start_redis()
        saved = dict(ps.env)
        ps.env.update(router_env or {})
        ps.start_router()
        ps.env = saved
        ps.s2s_env = s2s
        ps.start_frontend(**({} if s2s_frontends else s2s))
        for i in range(s2s_frontends):
            env = dict(ps.env, **s2s, c2s_listen="", ws_listen="", wss_listen="")
            if i:
                env["s2s_listen"] = "127.0.0.1:%d" % free_port()
            stack._extra += 1
            fe = Frontend(stack, "%s-s2s%d" % (tag, stack._extra), env)
            fe.allow_error_lines = True
            ps.s2s_frontends.append(fe)
            wait_port(int(env["s2s_listen"].rsplit(":", 1)[1]), READY_TIMEOUT, fe.proc, fe.log)
        ports = (ps.frontend.port,) if s2s_frontends else (ps.frontend.port, ps.s2s_port,
                                                            ps.s2s_tls_port)
        for port in ports:
            if port is not None:
                wait_port(port, READY_TIMEOUT, ps.frontend.proc, ps.frontend.log)
        wait_login(ps, new_user("probe"))
    except BaseException:
        print("\n".join(ps.stop() + [p for f in ps.s2s_frontends for p in f.stop()]))
        raise
    try:
        yield ps
    finally:
        problems = [p for f in ps.s2s_frontends for p in f.stop()] + ps.stop()
    assert not problems, "\n".join(problems)


def wait_login(ps, user, timeout=READY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        try:
            ps.login(user, timeout=3.0).close()
            return
        except Exception as e:  # noqa: BLE001 - the router link may lag
            if time.monotonic() > deadline or ps.frontend.proc.poll() is not None:
                raise AssertionError("login on our private stack %s fails: %r" % (ps.domain, e))
            time.sleep(0.2)


def befriend_chat_presence(first, second):
    """What a new user tries: `first` adds `second`, they chat both ways and see each
    other's presence change."""
    pp.befriend(first, second)
    pp.chat(first, second, "hello from %s \u2603" % pp.bare(first.jid))
    pp.chat(second, first, "hello back from %s \u00e9" % pp.bare(second.jid))
    pp.presence_both_ways(first, second)

"""XEP-0215 external service discovery (mod_extdisco): the STUN and TURN services the server
hands out for calls, with TURN credentials in the REST API scheme coturn checks with
use-auth-secret; and a real Debian coturn (`turnserver`) on loopback that allocates a relay
with the credentials the server gave over XMPP (coturn's own client, turnutils_uclient),
and refuses a tampered password or an expired username."""

import base64
import calendar
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import ROOT, clean_env, free_port, running_private_stack, wait_port
from xmpp_client import XMPPClient, dump, q, stanza_error_condition

NS_EXTDISCO = "urn:xmpp:extdisco:2"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
SECRET = "extdisco-test-secret-0123456789"
TTL = 3600
TURNSERVER = shutil.which("turnserver")
UCLIENT = shutil.which("turnutils_uclient")


def services(c, type_=None, to="localhost"):
    attr = "" if type_ is None else " type='%s'" % type_
    return c.iq("get", "<services xmlns='%s'%s/>" % (NS_EXTDISCO, attr), to=to)


def credentials(c, *services_xml):
    return c.iq("get", "<credentials xmlns='%s'>%s</credentials>"
                % (NS_EXTDISCO, "".join(services_xml)), to="localhost")


def entries(res, element="services"):
    assert res.get("type") == "result", dump(res)
    top = res.find(q(NS_EXTDISCO, element))
    assert top is not None, dump(res)
    return [dict(s.attrib) for s in top.findall(q(NS_EXTDISCO, "service"))]


def features(c, to="localhost"):
    res = c.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to)
    assert res.get("type") == "result", dump(res)
    return {f.get("var") for f in res.iter(q(NS_DISCO_INFO, "feature"))}


def coturn_password(username, secret=SECRET):
    """What coturn computes for a REST API username (use-auth-secret)."""
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def parse_expires(value):
    """An XEP-0082 dateTime in UTC ('Z') as Unix seconds."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", value), value
    return calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))


# --------------------------------------------------------------------- not configured
def test_not_offered_when_unconfigured(stack, new_user, login):
    """The shared stack sets no stun_host / turn_host: no feature, and the request is
    answered as an unsupported one (XEP-0215 section 2: service-unavailable)."""
    if getattr(stack, "remote", False):
        pytest.skip("the running stack may offer external services (compose does)")
    u = new_user("xdoff")
    c = login(u)
    assert NS_EXTDISCO not in features(c)
    for res in (services(c), credentials(c, "<service host='turn.example' type='turn'/>")):
        assert stanza_error_condition(res) == ("cancel", "service-unavailable"), dump(res)


# --------------------------------------------------------------------- configured
class Configured:
    """A private stack (own Redis, router, frontend) whose router offers STUN, TURN over
    UDP and TCP and TURNS; and, when coturn is installed, a coturn on loopback sharing the
    router's secret, at the TURN host and port the router names."""

    def __init__(self, stack, tmp):
        self.stack = stack
        self.tmp = tmp
        self.turn_port = free_port()
        self.secret_file = tmp / "turn-secret"
        self.secret_file.write_text("# shared with coturn (static-auth-secret)\n%s\n" % SECRET)
        os.chmod(self.secret_file, 0o600)
        self.env = {
            "stun_host": "127.0.0.1", "stun_port": self.turn_port,
            "turn_host": "127.0.0.1", "turn_port": self.turn_port, "turns_port": 5349,
            "turn_secret_file": self.secret_file, "turn_credential_ttl": TTL,
        }
        self.coturn = None

    def start_coturn(self):
        """Debian's coturn with the deployment's own deploy/coturn/turnserver.conf (REST API
        credentials, use-auth-secret) plus what its entrypoint adds (realm, the router's
        secret), on loopback: listening and relaying on 127.0.0.1, where two clients of
        this test relay to each other (allow-loopback-peers)."""
        self.coturn_log = self.tmp / "turnserver.log"
        conf = self.tmp / "turnserver.conf"
        conf.write_text((ROOT / "deploy" / "coturn" / "turnserver.conf").read_text()
                        + "realm=localhost\nstatic-auth-secret=%s\n" % SECRET)
        os.chmod(conf, 0o600)
        relay = self.turn_port + 10
        argv = [TURNSERVER, "-c", str(conf), "--listening-ip=127.0.0.1",
                "--listening-port=%d" % self.turn_port, "--relay-ip=127.0.0.1",
                "--min-port=%d" % relay, "--max-port=%d" % (relay + 40),
                "--allow-loopback-peers", "--userdb=%s" % (self.tmp / "turndb"),
                "--pidfile=%s" % (self.tmp / "turn.pid")]
        self.coturn_logf = open(self.coturn_log, "wb")
        self.coturn = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.coturn_logf,
                                       stderr=subprocess.STDOUT, env=clean_env(),
                                       cwd=str(self.tmp))
        wait_port(self.turn_port, 10, self.coturn, self.coturn_log)

    def stop_coturn(self):
        if self.coturn is not None:
            self.coturn.terminate()
            try:
                self.coturn.wait(10)
            except subprocess.TimeoutExpired:
                self.coturn.kill()
                self.coturn.wait(5)
            self.coturn_logf.close()
            self.coturn = None

    def client(self, user):
        c = XMPPClient(self.ps.frontend.port, cafile=self.stack.cafile)
        c.login(user.localpart, user.password)
        return c


@pytest.fixture(scope="module")
def configured(stack, tmp_path_factory):
    conf = Configured(stack, tmp_path_factory.mktemp("extdisco"))
    try:
        if TURNSERVER and UCLIENT:
            conf.start_coturn()
        with running_private_stack(stack, "extdisco", router_env=conf.env) as ps:
            conf.ps = ps
            yield conf
    finally:
        conf.stop_coturn()


def check_turn_credentials(svc, jid, before, after):
    """A TURN entry's credentials as coturn checks them: username EXPIRY:BARE-JID, password
    base64(HMAC-SHA1(secret, username)), expires the same instant, turn_credential_ttl
    after the request."""
    assert svc["restricted"] in ("1", "true"), svc
    expiry, _, who = svc["username"].partition(":")
    assert who == jid, svc
    assert before + TTL <= int(expiry) <= after + TTL, (svc, before, after)
    assert parse_expires(svc["expires"]) == int(expiry), svc
    assert svc["password"] == coturn_password(svc["username"]), svc


def test_services_lists_the_configured_entries(configured):
    u = configured.ps.new_user("xd")
    c = configured.client(u)
    try:
        assert NS_EXTDISCO in features(c)
        before = int(time.time())
        got = entries(services(c))
        after = int(time.time())
        port = str(configured.turn_port)
        listed = sorted((s["type"], s["host"], s["port"], s["transport"]) for s in got)
        assert listed == sorted([("stun", "127.0.0.1", port, "udp"),
                                 ("turn", "127.0.0.1", port, "udp"),
                                 ("turn", "127.0.0.1", port, "tcp"),
                                 ("turns", "127.0.0.1", "5349", "tcp")]), got
        for s in got:
            if s["type"] == "stun":
                assert "username" not in s and "password" not in s, s
            else:
                check_turn_credentials(s, u.jid, before, after)
        # The account's own bare JID is not a discovery service (MOD_AT_SERVER only).
        assert NS_EXTDISCO not in features(c, to=u.jid)
    finally:
        c.close()


def test_services_of_one_type(configured):
    u = configured.ps.new_user("xdt")
    c = configured.client(u)
    try:
        res = services(c, "turn")
        assert res.find(q(NS_EXTDISCO, "services")).get("type") == "turn"
        got = entries(res)
        assert sorted(s["transport"] for s in got) == ["tcp", "udp"], got
        assert all(s["type"] == "turn" for s in got), got
        assert [s["type"] for s in entries(services(c, "stun"))] == ["stun"]
        assert entries(services(c, "ftp")) == []
    finally:
        c.close()


def test_credentials_request(configured):
    """XEP-0215 section 3.3: credentials for a service named by host and type (and port)."""
    u = configured.ps.new_user("xdc")
    c = configured.client(u)
    port = configured.turn_port
    try:
        before = int(time.time())
        got = entries(credentials(c, "<service host='127.0.0.1' type='turn'/>"), "credentials")
        after = int(time.time())
        assert sorted(s["transport"] for s in got) == ["tcp", "udp"], got
        for s in got:
            check_turn_credentials(s, u.jid, before, after)
        got = entries(credentials(c, "<service host='127.0.0.1' type='turns' port='5349'/>"),
                      "credentials")
        assert [(s["type"], s["port"]) for s in got] == [("turns", "5349")], got
        # Unknown host, type or port: item-not-found.
        for svc in ("<service host='turn.elsewhere.example' type='turn'/>",
                    "<service host='127.0.0.1' type='ftp'/>",
                    "<service host='127.0.0.1' type='turn' port='%d'/>" % (port + 1)):
            res = credentials(c, svc)
            assert stanza_error_condition(res) == ("cancel", "item-not-found"), (svc, dump(res))
        # No host, no type, a port that is not one, nothing asked: bad-request.
        for svc in ("<service type='turn'/>", "<service host='127.0.0.1'/>",
                    "<service host='127.0.0.1' type='turn' port='http'/>",
                    "<service host='127.0.0.1' type='turn' port='70000'/>", ""):
            res = credentials(c, svc)
            assert stanza_error_condition(res) == ("modify", "bad-request"), (svc, dump(res))
    finally:
        c.close()


# --------------------------------------------------------------------- a real coturn
def uclient(host, port, username, password, tcp=False):
    """coturn's test client: allocates a relay on each of two clients and sends between
    them through it (-y); returns (exit code, output)."""
    argv = [UCLIENT, "-y", "-c", "-n", "1", "-p", str(port), "-u", username, "-w", password]
    if tcp:
        argv.append("-t")
    return subprocess.Popen(argv + [host], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=clean_env())


def finish(proc):
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


@pytest.mark.skipif(not (TURNSERVER and UCLIENT), reason="coturn is not installed "
                    "(tools/install-deps.sh installs it)")
def test_coturn_allocates_with_the_servers_credentials(configured):
    u = configured.ps.new_user("xdturn")
    c = configured.client(u)
    try:
        turn = [s for s in entries(services(c, "turn"))]
    finally:
        c.close()
    by_transport = {s["transport"]: s for s in turn}
    udp, tcp = by_transport["udp"], by_transport["tcp"]
    assert udp["host"] == "127.0.0.1" and int(udp["port"]) == configured.turn_port
    # The good ones over UDP and over TCP side by side (each takes a few seconds).
    runs = [uclient(udp["host"], udp["port"], udp["username"], udp["password"]),
            uclient(tcp["host"], tcp["port"], tcp["username"], tcp["password"], tcp=True)]
    # A tampered password; a username whose expiry has passed, with the password coturn
    # would accept for it otherwise (so only the expiry refuses it).
    expired = "%d:%s" % (int(time.time()) - 60, u.jid)
    bad = [uclient(udp["host"], udp["port"], udp["username"], udp["password"][:-2] + "x="),
           uclient(udp["host"], udp["port"], expired, coturn_password(expired))]
    for proc in runs:
        rc, out = finish(proc)
        assert rc == 0 and "Cannot complete Allocation" not in out, out
        sent = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
        assert sent and int(sent[-1][1]) > 0, "nothing went through the relay:\n" + out
    for proc in bad:
        rc, out = finish(proc)
        assert rc != 0 and "Cannot complete Allocation" in out, out


# --------------------------------------------------------------------- configuration
def refused(stack, env, key):
    full = {"router_bind": "tcp://127.0.0.1:%d" % free_port(), "redis_port": free_port()}
    full.update(env)
    r = subprocess.run([str(stack.bin("session-router")), "-c", str(stack.config)],
                       capture_output=True, text=True, env=clean_env(full), timeout=20,
                       stdin=subprocess.DEVNULL, cwd=str(stack.tmp))
    assert r.returncode != 0, "the router started although %s is wrong:\n%s" % (key, r.stderr)
    errs = [ln for ln in r.stderr.splitlines() if " error: " in ln or "fatal" in ln]
    assert errs and key in errs[-1], r.stderr
    return errs[-1]


@pytest.mark.parametrize("env,key", [
    ({"turn_host": "turn.example.org"}, "turn_host"),
    ({"turn_host": "turn example"}, "turn_host"),
    ({"stun_host": "stun/example"}, "stun_host"),
    ({"turns_port": "5349"}, "turns_port"),
    ({"turn_port": "0"}, "turn_port"),
    ({"turn_credential_ttl": "10"}, "turn_credential_ttl"),
    ({"turn_host": "turn.example.org", "turn_secret": "x", "turn_rest_separator": "ab"},
     "turn_rest_separator"),
    ({"turn_host": "turn.example.org", "turn_secret_file": "/nonexistent/turn-secret"},
     "turn_secret_file"),
])
def test_bad_configuration_is_refused_naming_the_key(stack, env, key):
    if getattr(stack, "remote", False):
        pytest.skip("starts its own router")
    refused(stack, env, key)


def test_secret_is_never_logged(configured):
    logs = "".join(p.read_text(errors="replace") for p in configured.ps.router_logs)
    assert "extdisco" in logs and SECRET not in logs

"""TLS policy, certificate reload and privilege drop (README.md, "TLS" and "Privileges").

- sslscan (Debian's 2.0.7) against the STARTTLS and the direct TLS listener of a frontend
  with an ECDSA and an RSA certificate: only TLS 1.2 and 1.3, only the policy's suites
  (ECDHE + AEAD in TLS 1.2), only X25519/P-256/P-384, no renegotiation.
- both certificates served: an ECDSA-only TLS 1.2 client gets the EC one, an RSA-only one
  the RSA one (STARTTLS and direct TLS).
- SIGHUP: clients stay connected and working, new connections see the new certificate; a
  broken key logs an error naming tls_key and the file and the old certificate stays.
- start-up errors name the key and the file; the process exits non-zero.
- user/group: the frontend and the router run as nobody (only as root) and still serve;
  the router survives SIGHUP.
"""

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import (READY_TIMEOUT, Frontend, clean_env, free_port, read_log, server_argv,
                      stop_process, wait_port, wait_probe_login)
from xmpp_client import XMPPClient

SSLSCAN = "/usr/bin/sslscan"

TLS12_ALLOWED = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
}
TLS13_ALLOWED = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                 "TLS_CHACHA20_POLY1305_SHA256"}
# Whatever slips past the allow list above would still be caught by name here.
FORBIDDEN_WORDS = ("CBC", "-SHA:", "RC4", "DES", "NULL", "EXP", "anon", "ADH", "AECDH", "PSK",
                   "SRP", "CAMELLIA", "ARIA", "SEED", "IDEA", "MD5", "CCM")
GROUPS_ALLOWED = {"x25519", "secp256r1", "secp384r1"}

# The extra frontends here are scanned and connected to many times from one address.
NO_IP_LIMITS = {"connection_rate_per_ip": 0, "max_connections_per_ip": 0,
                "auth_failures_per_ip": 0}


# ------------------------------------------------------------------ certificates
def make_cert(dirpath, name, kind):
    """Self-signed certificate for localhost; kind 'ec' (P-256) or 'rsa' (2048).
    Returns (cert path, key path), both readable by everyone (privilege-drop tests)."""
    cert, key = dirpath / (name + ".pem"), dirpath / (name + ".key")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec"
              else ["-newkey", "rsa:2048"])
    subprocess.run(["openssl", "req", "-x509"] + newkey +
                   ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)
    return cert, key


def der_of(cert_path):
    return ssl.PEM_cert_to_DER_cert(Path(cert_path).read_text())


class Certs:
    pass


@pytest.fixture(scope="module")
def certs():
    """Certificates in a directory anyone can traverse (pytest's tmp dirs are 0700, and the
    privilege-drop tests reload as nobody)."""
    d = Path(tempfile.mkdtemp(prefix="xmpp-tls-"))
    os.chmod(d, 0o755)
    c = Certs()
    c.dir = d
    c.ec1, c.ec1_key = make_cert(d, "ec1", "ec")
    c.ec2, c.ec2_key = make_cert(d, "ec2", "ec")
    c.rsa1, c.rsa1_key = make_cert(d, "rsa1", "rsa")
    yield c
    shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ frontends
def wait_login(fe, probe, timeout=READY_TIMEOUT):
    """The frontend accepts TCP and the probe account can log in (TLS not verified: these
    frontends have their own certificates)."""
    wait_probe_login(fe, probe, timeout=timeout)


@pytest.fixture
def tls_frontend(stack):
    """tls_frontend(tag, **overrides) -> Frontend with a direct TLS listener (.tls_port),
    per-address limits off, ready for logins. Stopped and checked at the end of the test."""
    started = []

    def start(tag, **overrides):
        tls_port = free_port()
        env = dict(NO_IP_LIMITS)
        env["c2s_tls_listen"] = "127.0.0.1:%d" % tls_port
        env.update(overrides)
        stack._extra += 1
        fe = Frontend(stack, "%s%d" % (tag, stack._extra), env)
        fe.tls_port = tls_port
        started.append(fe)
        wait_login(fe, stack.probe)
        wait_port(tls_port, READY_TIMEOUT, fe.proc, fe.log)
        return fe
    yield start
    problems = []
    for fe in started:
        problems += fe.stop()
    assert not problems, "\n".join(problems)


@pytest.fixture
def dual_frontend(certs, tls_frontend):
    """A frontend serving ECDSA and RSA certificates side by side."""
    return tls_frontend("dual", tls_cert="%s, %s" % (certs.ec1, certs.rsa1),
                        tls_key="%s,%s" % (certs.ec1_key, certs.rsa1_key))


def client_ctx(max12=False, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if max12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def direct_tls_cert(port, ctx=None):
    """(DER certificate, cipher name, protocol) of a fresh direct TLS connection."""
    ctx = ctx or client_ctx()
    with socket.create_connection(("127.0.0.1", port), timeout=READY_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True), s.cipher()[0], s.version()


def starttls_cert(port, ctx):
    """The same over STARTTLS on the client port."""
    c = XMPPClient(port)
    try:
        c.ssl_context = lambda: ctx
        c.open_stream()
        c.starttls()
        return c.sock.getpeercert(binary_form=True), c.sock.cipher()[0], c.sock.version()
    finally:
        c.close()


# ------------------------------------------------------------------ the policy, by sslscan
def sslscan(target, starttls):
    if not os.access(SSLSCAN, os.X_OK):
        pytest.skip("sslscan is not installed (%s)" % SSLSCAN)
    cmd = [SSLSCAN, "--xml=-", "--no-colour", "--ipv4"]
    if starttls:
        cmd.append("--starttls-xmpp")
    r = subprocess.run(cmd + [target], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "sslscan failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr)
    start = r.stdout.find("<?xml")
    assert start >= 0, "no XML from sslscan: %s" % r.stdout
    root = ET.fromstring(r.stdout[start:])
    test = root.find("ssltest")
    assert test is not None, r.stdout
    return test, r.stdout


@pytest.mark.parametrize("listener", ["starttls", "direct"])
def test_sslscan_only_policy_protocols_ciphers_groups(dual_frontend, listener):
    fe = dual_frontend
    if listener == "starttls":
        # the stream's 'to' is the host name given: the served domain
        test, text = sslscan("localhost:%d" % fe.port, starttls=True)
    else:
        test, text = sslscan("127.0.0.1:%d" % fe.tls_port, starttls=False)

    enabled = {"%s%s" % (p.get("type"), p.get("version"))
               for p in test.findall("protocol") if p.get("enabled") == "1"}
    assert enabled == {"tls1.2", "tls1.3"}, "protocols enabled: %s\n%s" % (enabled, text)

    ciphers = [(c.get("sslversion"), c.get("cipher")) for c in test.findall("cipher")
               if c.get("status") in ("accepted", "preferred")]
    assert ciphers, "sslscan saw no accepted cipher:\n" + text
    bad = []
    for version, name in ciphers:
        allowed = TLS13_ALLOWED if version == "TLSv1.3" else TLS12_ALLOWED
        if version not in ("TLSv1.2", "TLSv1.3") or name not in allowed:
            bad.append((version, name))
        elif any(w in name + ":" for w in FORBIDDEN_WORDS):
            bad.append((version, name))
    assert not bad, "suites outside the policy accepted: %s\n%s" % (bad, text)
    # Both certificates answer: ECDSA and RSA authenticated TLS 1.2 suites, all three of 1.3.
    names = {n for _, n in ciphers}
    assert TLS12_ALLOWED <= names, "missing TLS 1.2 suites: %s" % (TLS12_ALLOWED - names)
    assert TLS13_ALLOWED <= names, "missing TLS 1.3 suites: %s" % (TLS13_ALLOWED - names)

    groups = {g.get("name").split()[0] for g in test.findall("group")}
    assert groups and groups <= GROUPS_ALLOWED, "groups: %s\n%s" % (groups, text)

    for r in test.findall("renegotiation"):
        assert r.get("supported") == "0", "renegotiation supported:\n" + text
    for c in test.findall("compression"):
        assert c.get("supported") == "0", "compression supported:\n" + text
    for h in test.findall("heartbleed"):
        assert h.get("vulnerable") == "0", text


def test_old_protocols_and_weak_suites_refused(dual_frontend):
    """The same from Python's ssl: a CBC-only or an RSA-key-exchange-only TLS 1.2 client
    gets no handshake; a TLS 1.2 client gets an ECDHE AEAD suite."""
    fe = dual_frontend
    for weak in ("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA", "AES128-GCM-SHA256:AES256-SHA",
                 "DHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256"):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            direct_tls_cert(fe.tls_port, client_ctx(max12=True, ciphers=weak))
    _, cipher, version = direct_tls_cert(fe.tls_port, client_ctx(max12=True))
    assert version == "TLSv1.2" and cipher in TLS12_ALLOWED, (version, cipher)
    _, cipher, version = direct_tls_cert(fe.tls_port)
    assert version == "TLSv1.3" and cipher in TLS13_ALLOWED, (version, cipher)


# ------------------------------------------------------------------ ECDSA and RSA together
@pytest.mark.parametrize("listener", ["starttls", "direct"])
def test_dual_certificates_by_client_suites(certs, dual_frontend, listener):
    fe = dual_frontend
    get = ((lambda ctx: starttls_cert(fe.port, ctx)) if listener == "starttls"
           else (lambda ctx: direct_tls_cert(fe.tls_port, ctx)))
    der, cipher, _ = get(client_ctx(max12=True, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:"
                                                        "ECDHE-ECDSA-CHACHA20-POLY1305"))
    assert der == der_of(certs.ec1), "ECDSA-only client did not get the EC certificate"
    assert "ECDSA" in cipher
    der, cipher, _ = get(client_ctx(max12=True, ciphers="ECDHE-RSA-AES256-GCM-SHA384:"
                                                        "ECDHE-RSA-CHACHA20-POLY1305"))
    assert der == der_of(certs.rsa1), "RSA-only client did not get the RSA certificate"
    assert "RSA" in cipher


def test_dual_certificates_login_either_way(stack, certs, dual_frontend, new_user):
    """A login over each kind of certificate works end to end."""
    u = new_user("dual")
    for suites in ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"):
        c = XMPPClient(dual_frontend.port)
        try:
            ctx = client_ctx(max12=True, ciphers=suites)
            c.ssl_context = lambda: ctx
            c.login(u.localpart, u.password, resource="r-" + suites[6:9])
            assert c.sock.cipher()[0] == suites
            c.ping()
        finally:
            c.close()


# ------------------------------------------------------------------ SIGHUP reload
def wait_log(fe, needle, count, timeout=READY_TIMEOUT):
    """Waits until `needle` appears `count` times in the frontend's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = read_log(fe.log)
        if text.count(needle) >= count:
            return text
        time.sleep(0.05)
    raise AssertionError("%r not logged %d times within %.0fs:\n%s"
                         % (needle, count, timeout, read_log(fe.log)[-4000:]))


def install(src_cert, src_key, dst_cert, dst_key):
    """Replaces the served files the way a certificate renewal would (write, rename)."""
    for src, dst in ((src_cert, dst_cert), (src_key, dst_key)):
        tmp = Path(str(dst) + ".new")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)


def reload_scenario(fe, certs, cert, key, user, signal_pid=None):
    """Shared by the reload tests: connected client survives, new connections see the new
    certificate, a broken key is refused with the old certificate kept."""
    pid = signal_pid or fe.proc.pid
    assert direct_tls_cert(fe.tls_port)[0] == der_of(certs.ec1)
    before = XMPPClient(fe.port)
    before.login(user.localpart, user.password, resource="before")
    before.ping()
    try:
        install(certs.ec2, certs.ec2_key, cert, key)
        os.kill(pid, signal.SIGHUP)
        wait_log(fe, "certificates reloaded", 1)
        assert fe.proc.poll() is None
        assert direct_tls_cert(fe.tls_port)[0] == der_of(certs.ec2), "new cert not served"
        assert starttls_cert(fe.port, client_ctx())[0] == der_of(certs.ec2)
        before.ping()                      # the old connection (old context) still works
        after = XMPPClient(fe.port)
        try:
            after.login(user.localpart, user.password, resource="after")
            after.ping()
            # and the two talk to each other across the reload
            after.message(before.jid, "across the reload")
            before.wait_message("across the reload", sender=after.jid)
        finally:
            after.close()

        # A broken key: an error naming tls_key and the file; the ec2 certificate stays.
        fe.allow_error_lines = True
        Path(key).write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
                             "-----END PRIVATE KEY-----\n")
        os.kill(pid, signal.SIGHUP)
        text = wait_log(fe, "TLS reload failed", 1)
        line = [ln for ln in text.splitlines() if "TLS reload failed" in ln][0]
        assert " error: " in line and "tls_key" in line and str(key) in line, line
        assert fe.proc.poll() is None
        assert direct_tls_cert(fe.tls_port)[0] == der_of(certs.ec2), "old cert not kept"
        before.ping()

        # A key that does not match: refused the same way, naming both files.
        install(certs.rsa1, certs.ec1_key, cert, key)
        os.kill(pid, signal.SIGHUP)
        text = wait_log(fe, "TLS reload failed", 2)
        line = [ln for ln in text.splitlines() if "TLS reload failed" in ln][1]
        assert "does not match" in line and str(key) in line and str(cert) in line, line
        assert direct_tls_cert(fe.tls_port)[0] == der_of(certs.ec2)

        # Fixed again: served.
        install(certs.ec1, certs.ec1_key, cert, key)
        os.kill(pid, signal.SIGHUP)
        wait_log(fe, "certificates reloaded", 2)
        assert direct_tls_cert(fe.tls_port)[0] == der_of(certs.ec1)
        before.ping()
    finally:
        before.close()


def served_copy(certs, tag):
    """A world-readable directory holding cert.pem/key.pem copied from ec1."""
    d = certs.dir / tag
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    cert, key = d / "cert.pem", d / "key.pem"
    install(certs.ec1, certs.ec1_key, cert, key)
    return cert, key


def test_sighup_reloads_certificates(certs, tls_frontend, new_user):
    cert, key = served_copy(certs, "reload")
    fe = tls_frontend("reload", tls_cert=str(cert), tls_key=str(key))
    reload_scenario(fe, certs, cert, key, new_user("hup"))


def test_sighup_without_tls_is_harmless(stack, extra_frontend):
    fe = extra_frontend(require_tls="false", tls_cert="", tls_key="")
    fe.proc.send_signal(signal.SIGHUP)
    wait_log(fe, "nothing to reload", 1)
    assert fe.proc.poll() is None


# ------------------------------------------------------------------ start-up errors
def start_fails(stack, overrides, *needles):
    """Runs a frontend that must exit non-zero at start with an error line holding every
    needle."""
    env = {"c2s_listen": "127.0.0.1:%d" % free_port(), "frontend_name": "fe-bad"}
    env.update(overrides)
    r = subprocess.run([str(stack.bin("c2s-frontend")), "-c", str(stack.config)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=clean_env(env), cwd=str(stack.tmp), timeout=20)
    assert r.returncode != 0, "started although it should not:\n" + r.stderr
    errs = [ln for ln in r.stderr.splitlines() if " error: " in ln]
    assert errs, r.stderr
    for n in needles:
        assert str(n) in errs[-1], "%r not in %r" % (str(n), errs[-1])
    return errs[-1]


def test_start_with_missing_cert_file(stack, certs):
    missing = certs.dir / "nope.pem"
    start_fails(stack, {"tls_cert": missing, "tls_key": certs.ec1_key}, "tls_cert", missing,
                "No such file")


def test_start_with_missing_key_file(stack, certs):
    missing = certs.dir / "nope.key"
    start_fails(stack, {"tls_cert": certs.ec1, "tls_key": missing}, "tls_key", missing)


def test_start_with_bad_pem(stack, certs, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("this is not PEM\n")
    start_fails(stack, {"tls_cert": bad, "tls_key": certs.ec1_key}, "tls_cert", bad, "PEM")
    start_fails(stack, {"tls_cert": certs.ec1, "tls_key": bad}, "tls_key", bad, "PEM")


def test_start_with_mismatched_key(stack, certs):
    start_fails(stack, {"tls_cert": certs.ec1, "tls_key": certs.ec2_key}, "tls_key",
                certs.ec2_key, certs.ec1, "does not match")
    start_fails(stack, {"tls_cert": certs.ec1, "tls_key": certs.rsa1_key}, "tls_key",
                certs.rsa1_key, "does not match")
    # paired by position: swapped keys do not match
    start_fails(stack, {"tls_cert": "%s,%s" % (certs.ec1, certs.rsa1),
                        "tls_key": "%s,%s" % (certs.rsa1_key, certs.ec1_key)},
                "tls_key", certs.rsa1_key, "does not match")


def test_start_with_bad_lists(stack, certs):
    start_fails(stack, {"tls_cert": "%s,%s" % (certs.ec1, certs.rsa1),
                        "tls_key": str(certs.ec1_key)}, "tls_key", "pair by position")
    start_fails(stack, {"tls_cert": "%s,%s" % (certs.ec1, certs.ec2),
                        "tls_key": "%s,%s" % (certs.ec1_key, certs.ec2_key)},
                "tls_cert", certs.ec2, "second ECDSA")


def test_start_with_unknown_user_or_group(stack, certs):
    start_fails(stack, {"user": "no-such-user-xmpp"}, "key 'user'", "no-such-user-xmpp")
    start_fails(stack, {"user": "nobody", "group": "no-such-group-xmpp"}, "key 'group'",
                "no-such-group-xmpp")
    start_fails(stack, {"group": "nogroup"}, "key 'group'")


# ------------------------------------------------------------------ the router and SIGHUP
def test_router_survives_sighup(stack, login, new_user):
    before = read_log(stack.router_log).count("SIGHUP")
    stack.router.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + READY_TIMEOUT
    while read_log(stack.router_log).count("SIGHUP") == before:
        assert time.monotonic() < deadline, "router did not log the SIGHUP"
        time.sleep(0.05)
    assert stack.router.poll() is None, "the router died of SIGHUP"
    c = login(new_user("hup"))
    c.ping()


# ------------------------------------------------------------------ privilege drop
def proc_ids(pid):
    """(uids, gids, groups) from /proc/PID/status."""
    uids = gids = groups = None
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("Uid:"):
            uids = [int(x) for x in line.split()[1:]]
        elif line.startswith("Gid:"):
            gids = [int(x) for x in line.split()[1:]]
        elif line.startswith("Groups:"):
            groups = [int(x) for x in line.split()[1:]]
    return uids, gids, groups


def test_privileges_dropped_to_nobody(stack, certs, tls_frontend, new_user):
    if os.geteuid() != 0:
        pytest.skip("privilege drop needs root (CI runs as root)")
    nobody = pwd.getpwnam("nobody")
    # Its own router, as nobody, on its own port, against the same Redis.
    router_port = free_port()
    endpoint = "tcp://127.0.0.1:%d" % router_port
    rlog = certs.dir / ("router-nobody-%d.log" % router_port)
    with open(rlog, "wb") as logf:
        router = subprocess.Popen(
            server_argv([stack.bin("session-router"), "-c", stack.config], rlog),
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, cwd=str(certs.dir),
            env=clean_env({"router_bind": endpoint, "user": "nobody"}))
    fe = None
    try:
        cert, key = served_copy(certs, "nobody")
        fe = tls_frontend("nobody", tls_cert=str(cert), tls_key=str(key),
                          router_endpoint=endpoint, user="nobody")
        for pid, log in ((router.pid, rlog), (fe.proc.pid, fe.log)):
            uids, gids, groups = proc_ids(pid)
            assert uids == [nobody.pw_uid] * 4, (pid, uids)
            assert gids == [nobody.pw_gid] * 4, (pid, gids)
            assert 0 not in groups, (pid, groups)
            assert "dropped privileges: now user nobody" in read_log(log), read_log(log)

        # Logins work through both (wait_login did one already), and reloads work as
        # nobody because the files are readable by it.
        user = new_user("nobody")
        reload_scenario(fe, certs, cert, key, user)

        # The router takes SIGHUP as nobody and carries on.
        router.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + READY_TIMEOUT
        while "SIGHUP" not in read_log(rlog):
            assert time.monotonic() < deadline, read_log(rlog)
            time.sleep(0.05)
        assert router.poll() is None
        c = XMPPClient(fe.port)
        try:
            c.login(user.localpart, user.password, resource="after-router-hup")
            c.ping()
        finally:
            c.close()

        # A key readable only by root cannot be reloaded by nobody: logged, old kept.
        os.chmod(key, 0o600)
        fe.proc.send_signal(signal.SIGHUP)
        text = wait_log(fe, "TLS reload failed", 3)
        line = [ln for ln in text.splitlines() if "TLS reload failed" in ln][-1]
        assert "Permission denied" in line and str(key) in line, line
        assert direct_tls_cert(fe.tls_port)[0] == der_of(certs.ec1)
    finally:
        # the frontend first, so it does not outlive its router (its log is still checked
        # by the fixture)
        if fe is not None:
            assert fe.terminate() == 0
        problems = stop_process(router, "session-router (nobody)", rlog)
        assert not problems, "\n".join(problems)


def test_running_as_root_warns(stack, extra_frontend):
    if os.geteuid() != 0:
        pytest.skip("the warning is for processes running as root")
    fe = extra_frontend()
    assert "running as root" in read_log(fe.log)

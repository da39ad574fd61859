"""Redis AUTH (redis_password, redis_password_file, redis_user) for the router and xmppctl."""

import socket
import ssl
import subprocess

import pytest

from security_helpers import SecureStack, redis_command, secure, wait_log  # noqa: F401



def test_xmppctl_sends_auth(secure):
    s = secure()
    s.start_redis(password="right-pw")
    user = s.new_user(env={"redis_password": "right-pw"})
    r = s.ctl("users", env={"redis_password": "right-pw"})
    assert r.returncode == 0 and user.jid in r.stdout.split()

    r = s.ctl("users", env={"redis_password": "wrong-pw"})
    assert r.returncode == 1
    assert "refused AUTH" in r.stderr and "redis_password" in r.stderr, r.stderr
    assert "wrong-pw" not in r.stderr

    r = s.ctl("users")
    assert r.returncode == 1
    assert "NOAUTH" in r.stderr and "redis_password" in r.stderr, r.stderr

    pw_file = s.tmp / "redis.pw"
    pw_file.write_text("# the Redis password\nright-pw\n")
    pw_file.chmod(0o600)
    r = s.ctl("users", env={"redis_password_file": pw_file})
    assert r.returncode == 0 and user.jid in r.stdout.split(), r.stderr

    r = s.ctl("users", env={"redis_password_file": pw_file, "redis_password": "right-pw"})
    assert r.returncode == 1 and "redis_password_file" in r.stderr, r.stderr


def test_router_wrong_password_is_logged_and_retried_until_fixed(secure):
    s = secure()
    s.start_redis(password="right-pw")
    user = s.new_user(env={"redis_password": "right-pw"})

    # No password at all: Redis says NOAUTH; the router names the key it needs.
    s.start_router(allow_error_lines=True)
    wait_log(s.routers[-1][1], r"error: storage: Redis at 127\.0\.0\.1:\d+ requires a password: "
             r"set redis_password")
    s.stop_router()

    # A wrong password: an error naming redis_password, again and again (backoff).
    s.start_router(allow_error_lines=True, redis_password="wrong-pw")
    log = s.routers[-1][1]
    wait_log(log, r"error: storage: Redis at 127\.0\.0\.1:\d+ refused AUTH: .*check "
             r"redis_password\); retrying in \d+ ms")
    wait_log(log, r"retrying in 400 ms")  # the third attempt: the router keeps retrying
    port, _ = s.start_frontend("fe-redis-auth")
    s.wait_login(port, user, want="temporary-auth-failure")
    text = log.read_text()
    assert "wrong-pw" not in text and "storage: connected" not in text
    s.stop_router()

    # Fixed (from a file this time): logins work through the same frontend.
    pw_file = s.tmp / "redis.pw"
    pw_file.write_text("right-pw\n")
    pw_file.chmod(0o600)
    s.start_router(redis_password_file=pw_file)
    wait_log(s.routers[-1][1], r"storage: connected to Redis at 127\.0\.0\.1:\d+ \(authenticated\)")
    s.wait_login(port, user)


def test_router_with_acl_user(secure):
    s = secure()
    s.start_redis(password="admin-pw")
    redis_command(s.redis_port, "ACL", "SETUSER", "xmpp", "on", ">xmpp-pw", "~*", "+@all",
                  password="admin-pw")
    acl = {"redis_user": "xmpp", "redis_password": "xmpp-pw"}
    user = s.new_user(env=acl)
    s.start_router(**acl)
    wait_log(s.routers[-1][1], r"storage: connected to Redis at .* \(authenticated\)")
    port, _ = s.start_frontend("fe-redis-acl")
    s.wait_login(port, user)

    r = s.ctl("users", env={"redis_user": "xmpp", "redis_password": "admin-pw"})
    assert r.returncode == 1 and "redis_user" in r.stderr, r.stderr


# ---------------------------------------------------------------------- Redis over TLS
def make_cert(path, cn="localhost"):
    """A self-signed ECDSA certificate (also usable as its own CA) and key."""
    cert, key = path.with_suffix(".crt"), path.with_suffix(".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=%s" % cn,
         "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % cn],
        check=True, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    return cert, key


def tls_ping(port, ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64)


@pytest.fixture
def tls_redis(secure):
    """A SecureStack whose Redis listens only for TLS (clients must present a certificate
    signed by the server's own), with .cert/.key and a second, unrelated .other_cert."""
    s = secure()
    s.cert, s.key = make_cert(s.tmp / "redis")
    s.other_cert, _ = make_cert(s.tmp / "other")
    s.start_tls_redis = lambda: s.start_redis(
        "--port", "0", "--tls-port", str(s.redis_port), "--tls-cert-file", str(s.cert),
        "--tls-key-file", str(s.key), "--tls-ca-cert-file", str(s.cert),
        "--tls-auth-clients", "yes", port=0,
        ping=lambda: tls_ping(s.redis_port, s.cert, s.cert, s.key) == b"+PONG\r\n")
    s.start_tls_redis()
    return s


def test_router_and_xmppctl_reach_redis_over_tls(tls_redis):
    s = tls_redis
    tls = {"redis_tls": "true", "redis_tls_ca": s.cert, "redis_tls_cert": s.cert,
           "redis_tls_key": s.key}
    user = s.new_user(env=tls)
    r = s.ctl("users", env=tls)
    assert r.returncode == 0 and user.jid in r.stdout.split(), r.stderr
    assert r.stderr == ""
    s.start_router(**tls)
    log = s.routers[-1][1]
    wait_log(log, r"storage: TLS to Redis at 127\.0\.0\.1:%d, certificate checked against "
             % s.redis_port)
    wait_log(log, r"storage: connected to Redis at 127\.0\.0\.1:%d" % s.redis_port)
    port, _ = s.start_frontend("fe-redis-tls")
    s.wait_login(port, user)
    for _ in range(3):
        assert s.try_login(port, user) == "success"

    # Redis restarts (accounts are lost with it: --save ""): the relay reconnects.
    s.stop_redis()
    s.wait_login(port, user, want="temporary-auth-failure")
    s.start_tls_redis()
    user2 = s.new_user(env=tls)
    s.wait_login(port, user2)


def test_redis_tls_with_wrong_ca_or_name_is_refused(tls_redis):
    s = tls_redis
    good = {"redis_tls": "true", "redis_tls_ca": s.cert, "redis_tls_cert": s.cert,
            "redis_tls_key": s.key}
    user = s.new_user(env=good)

    wrong_ca = dict(good, redis_tls_ca=s.other_cert)
    r = s.ctl("users", env=wrong_ca)
    assert r.returncode == 1 and "redis_tls_ca" in r.stderr, r.stderr

    s.start_router(allow_error_lines=True, **wrong_ca)
    wait_log(s.routers[-1][1], r"error: storage: TLS to Redis at 127\.0\.0\.1:%d failed: "
             r"handshake: certificate not accepted: .*\(check redis_tls_ca" % s.redis_port)
    port, _ = s.start_frontend("fe-redis-tls-bad")
    s.wait_login(port, user, want="temporary-auth-failure")
    assert "storage: connected" not in s.routers[-1][1].read_text()
    s.stop_router()

    s.start_router(allow_error_lines=True, redis_tls_server_name="redis.example.org", **good)
    wait_log(s.routers[-1][1], r"error: storage: TLS to Redis .* failed: handshake: certificate "
             r"not accepted: .*redis_tls_server_name")
    s.stop_router()

    # Without a client certificate the server refuses us (tls-auth-clients yes).
    s.start_router(allow_error_lines=True, redis_tls="true", redis_tls_ca=s.cert)
    wait_log(s.routers[-1][1], r"error: storage: TLS to Redis .* failed: Redis refused us after "
             r"the handshake: .*certificate required \(check redis_tls_cert and redis_tls_key\)")
    s.stop_router()

    s.start_router(**good)
    s.wait_login(port, user)

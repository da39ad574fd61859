"""CURVE on the frontend-router link (link_curve) and the router's ZAP handler: only the
frontends whose public keys the router lists get in; xmppctl keygen makes the keys."""

import re
import socket
import subprocess

import pytest

from conftest import clean_env, free_port, read_log
from security_helpers import (Z85, SecureStack, expect_refused_start, keygen, secure,  # noqa: F401
                              wait_log)

try:
    import zmq
except ImportError:  # pragma: no cover - python3-zmq is a test dependency
    zmq = None



def test_keygen_prints_pasteable_key_pairs(stack):
    if getattr(stack, "remote", False):
        pytest.skip("runs xmppctl")
    for role, default in (("frontend", True), ("router", False)):
        text, values = keygen(stack, None if default else role)
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        assert [ln.split(" = ")[0] for ln in lines] == ["%s_curve_public" % role,
                                                         "%s_curve_secret" % role], text
        for ln in lines:
            assert re.fullmatch(r"%s_curve_(public|secret) = %s" % (role, Z85), ln), ln
        pub, sec = values["%s_curve_public" % role], values["%s_curve_secret" % role]
        assert pub != sec
        if zmq is not None:
            assert zmq.curve_public(sec.encode()).decode() == pub
    assert keygen(stack)[1] != keygen(stack)[1], "two runs made the same key pair"
    r = subprocess.run([str(stack.bin("xmppctl")), "keygen", "server"], capture_output=True,
                       text=True, timeout=10, env=clean_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "keygen [router|frontend|admin]" in r.stderr


def zmtp_mechanism(port):
    """The security mechanism a ZeroMQ peer announces in its ZMTP 3 greeting."""
    greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"CURVE".ljust(20, b"\0") + b"\0" * 32
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(greeting)
        got = b""
        while len(got) < 64:
            chunk = s.recv(64 - len(got))
            if not chunk:
                break
            got += chunk
    return got[12:32].rstrip(b"\0").decode()


def test_curve_admits_listed_frontend_and_refuses_others(stack, secure):
    """keygen output pasted into the shared config file as it is: the router's pair and one
    frontend's pair; the router lists that frontend's key in a file with a name. A second
    frontend with a key the router does not list, and a third without CURVE, are refused:
    the router logs both, their clients get a temporary failure, the listed one works."""
    rt_text, rt = keygen(stack, "router")
    fe_text, fe = keygen(stack, "frontend")
    _, bad = keygen(stack, "frontend")
    s = secure("link_curve = true\n" + rt_text + fe_text)
    allow = s.tmp / "frontends.keys"
    allow.write_text("# frontends allowed on the link\n\n%s good-frontend\n"
                     % fe["frontend_curve_public"])
    s.start_redis()
    s.start_router(router_curve_allow_file=allow)
    router_log = s.routers[-1][1]
    user = s.new_user()
    good_port, good_log = s.start_frontend("fe-good")
    s.wait_login(good_port, user)
    wait_log(router_log, r"link: CURVE on, router public key %s, 1 frontend keys allowed"
             % re.escape(rt["router_curve_public"]))
    wait_log(router_log, r"admitted a frontend at 127\.0\.0\.1 with key %s good-frontend"
             % re.escape(fe["frontend_curve_public"]))
    assert "CURVE on, our public key %s" % fe["frontend_curve_public"] in read_log(good_log)
    assert zmtp_mechanism(s.router_port) == "CURVE"

    # A frontend with a key pair the router does not list.
    bad_port, bad_log = s.start_frontend(
        "fe-bad", allow_error_lines=True, frontend_curve_secret=bad["frontend_curve_secret"],
        frontend_curve_public=bad["frontend_curve_public"])
    wait_log(router_log, r"warn: link: refused a frontend at 127\.0\.0\.1: CURVE key %s is "
             r"not in router_curve_allow" % re.escape(bad["frontend_curve_public"]))
    wait_log(bad_log, r"error: router link: the router refused our CURVE key %s"
             % re.escape(bad["frontend_curve_public"]))
    for _ in range(3):
        assert s.try_login(bad_port, user) == "temporary-auth-failure"

    # A frontend without CURVE.
    plain_port, _ = s.start_frontend("fe-plain", allow_error_lines=True, link_curve="false")
    # Which side notices the mechanism mismatch first is a race; the router logs either.
    wait_log(router_log, r"warn: link: refused a connection on tcp://\S+: the peer (does not "
             r"use CURVE|left during the CURVE handshake)")
    assert s.try_login(plain_port, user) == "temporary-auth-failure"

    # The listed frontend is not disturbed; the refusals are rate-limited in the log.
    for _ in range(3):
        assert s.try_login(good_port, user) == "success"
    text = read_log(router_log)
    assert len(re.findall(r"refused a frontend at .* %s" % re.escape(bad["frontend_curve_public"]),
                          text)) <= 2, text
    assert not re.search(r"^\S+ \S+ error: ", text, re.M), text


def test_curve_with_env_keys_and_secret_file(stack, secure):
    """Keys through XMPP_* variables and a secret file, the allowed keys as a list."""
    _, rt = keygen(stack, "router")
    _, fe1 = keygen(stack, "frontend")
    _, fe2 = keygen(stack, "frontend")
    s = secure()
    secret_file = s.tmp / "router.key"
    secret_file.write_text("# router secret\n%s\n" % rt["router_curve_secret"])
    secret_file.chmod(0o600)
    s.start_redis()
    s.start_router(link_curve="true", router_curve_secret_file=secret_file,
                   router_curve_allow=" %s , %s " % (fe1["frontend_curve_public"],
                                                     fe2["frontend_curve_public"]))
    user = s.new_user()
    for name, keys in (("fe-one", fe1), ("fe-two", fe2)):
        port, _ = s.start_frontend(name, link_curve="true",
                                   router_curve_public=rt["router_curve_public"],
                                   frontend_curve_secret=keys["frontend_curve_secret"])
        s.wait_login(port, user)
    # A frontend that has the wrong router key cannot complete the handshake either.
    _, other = keygen(stack, "router")
    port, _ = s.start_frontend("fe-wrong-server", allow_error_lines=True, link_curve="true",
                               router_curve_public=other["router_curve_public"],
                               frontend_curve_secret=fe1["frontend_curve_secret"])
    assert s.try_login(port, user) == "temporary-auth-failure"
    wait_log(s.routers[-1][1], r"warn: link: refused a connection on tcp://\S+: ")


def test_incomplete_or_malformed_curve_config_stops_the_process(stack, secure):
    _, rt = keygen(stack, "router")
    _, fe = keygen(stack, "frontend")
    s = secure()
    base = dict(s.env, link_curve="true")
    router_cases = [
        ({}, "router_curve_secret"),
        ({"router_curve_secret": rt["router_curve_secret"][:39]}, "router_curve_secret"),
        ({"router_curve_secret": rt["router_curve_secret"][:39] + "\""}, "router_curve_secret"),
        ({"router_curve_secret": rt["router_curve_secret"]}, "router_curve_allow"),
        ({"router_curve_secret": rt["router_curve_secret"],
          "router_curve_allow": fe["frontend_curve_public"] + ",short"}, "router_curve_allow"),
        ({"router_curve_secret": rt["router_curve_secret"],
          "router_curve_secret_file": "/nonexistent"}, "router_curve_secret_file"),
        ({"router_curve_secret_file": str(s.tmp / "missing.key"),
          "router_curve_allow": fe["frontend_curve_public"]}, "router_curve_secret_file"),
        ({"router_curve_secret": rt["router_curve_secret"],
          "router_curve_public": fe["frontend_curve_public"],
          "router_curve_allow": fe["frontend_curve_public"]}, "router_curve_public"),
    ]
    for extra, key in router_cases:
        env = dict(base, **extra)
        err = expect_refused_start(stack, "session-router", s.config, env, key)
        assert rt["router_curve_secret"] not in err, "a secret key was printed: " + err
    fe_base = dict(base, c2s_listen="127.0.0.1:%d" % free_port())
    frontend_cases = [
        ({"frontend_curve_secret": fe["frontend_curve_secret"]}, "router_curve_public"),
        ({"router_curve_public": rt["router_curve_public"]}, "frontend_curve_secret"),
        ({"router_curve_public": rt["router_curve_public"][1:],
          "frontend_curve_secret": fe["frontend_curve_secret"]}, "router_curve_public"),
        ({"router_curve_public": rt["router_curve_public"],
          "frontend_curve_secret": "x" * 41}, "frontend_curve_secret"),
        ({"router_curve_public": rt["router_curve_public"],
          "frontend_curve_secret": fe["frontend_curve_secret"],
          "frontend_curve_public": rt["router_curve_public"]}, "frontend_curve_public"),
    ]
    for extra, key in frontend_cases:
        err = expect_refused_start(stack, "c2s-frontend", s.config, dict(fe_base, **extra), key)
        assert fe["frontend_curve_secret"] not in err, "a secret key was printed: " + err

"""`make run` (tools/run-local.sh) serves other servers too (README.md, "Running a federated
server"): its one frontend listens for server-to-server streams (s2s_listen, STARTTLS) and
XEP-0368 direct TLS (s2s_tls_listen) with the local certificate, which also names the
service subdomains other servers check. Started here from a directory of its own, every port
moved to a free one through the variables run-local.sh and the config keys take."""

import os
import signal
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import READY_TIMEOUT, REMOTE, ROOT, free_port, skip_remote, wait_port
from xmpp_client import NS_TLS, XMPPClient, q

ORIGIN = "remote.example"


class ServerPeer(XMPPClient):
    """The initiating side of a server stream (jabber:server), without a certificate."""

    def stream_header(self, to=None):
        return ("<?xml version='1.0'?><stream:stream to='%s' from='%s' version='1.0' "
                "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
                % (to or self.domain, ORIGIN))


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    if REMOTE:
        skip_remote("make run starts its own processes")
    run = tmp_path_factory.mktemp("make-run")
    build = Path(os.environ.get("XMPP_BUILD", "build"))
    build = build if build.is_absolute() else ROOT / build
    ports = {k: free_port() for k in ("c2s", "s2s", "s2s_tls", "redis", "router", "admin",
                                      "upload", "ws", "wss")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPP_")}
    env.update({
        "RUN_DIR": str(run), "XMPP_REDIS_PORT": str(ports["redis"]),
        "XMPP_C2S_LISTEN": "127.0.0.1:%d" % ports["c2s"],
        "XMPP_ROUTER_BIND": "tcp://127.0.0.1:%d" % ports["router"],
        "XMPP_ROUTER_ENDPOINT": "tcp://127.0.0.1:%d" % ports["router"],
        "XMPP_ADMIN_BIND": "tcp://127.0.0.1:%d" % ports["admin"],
        "ROUTER_METRICS": "", "FRONTEND_METRICS": "",
        "UPLOAD_PORT": str(ports["upload"]),
        "WS_LISTEN": "127.0.0.1:%d" % ports["ws"], "WSS_LISTEN": "127.0.0.1:%d" % ports["wss"],
        "S2S_LISTEN": "127.0.0.1:%d" % ports["s2s"],
        "S2S_TLS_LISTEN": "127.0.0.1:%d" % ports["s2s_tls"],
    })
    log = open(run / "run-local.log", "wb")
    proc = subprocess.Popen([str(ROOT / "tools" / "run-local.sh"), str(build)], cwd=str(ROOT),
                            env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(ports["s2s"], READY_TIMEOUT, proc, run / "run-local.log")
        wait_port(ports["s2s_tls"], READY_TIMEOUT, proc, run / "run-local.log")
        yield run, ports
    finally:
        # run-local.sh stops what it started on SIGTERM (its trap); the group is its own.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def conf_value(run, key):
    vals = [line.split("=", 1)[1].strip() for line in (run / "xmpp.conf").read_text().splitlines()
            if line.split("=", 1)[0].strip() == key]
    return vals[-1] if vals else None


def test_config_has_the_server_listeners(make_run):
    run, ports = make_run
    assert conf_value(run, "s2s_listen") == "127.0.0.1:%d" % ports["s2s"]
    assert conf_value(run, "s2s_tls_listen") == "127.0.0.1:%d" % ports["s2s_tls"]


def test_server_stream_gets_starttls_then_the_local_certificate(make_run):
    run, ports = make_run
    p = ServerPeer(ports["s2s"], cafile=str(run / "cert.pem"))
    try:
        f = p.open_stream()
        assert p.header.get("from") == "localhost" and p.header.get("to") == ORIGIN, p.header
        tls = f.find(q(NS_TLS, "starttls"))
        assert tls is not None and tls.find(q(NS_TLS, "required")) is not None, f
        p.starttls()  # verifies run/cert.pem for localhost
        assert p.features.find(q(NS_TLS, "starttls")) is None
        assert p.header.get("from") == "localhost"
    finally:
        p.close()


def test_direct_tls_for_servers(make_run):
    run, ports = make_run
    p = ServerPeer(ports["s2s_tls"], cafile=str(run / "cert.pem"))
    try:
        p.sock = p.ssl_context().wrap_socket(p.sock, server_hostname="localhost")
        p.open_stream()
        assert p.header.get("from") == "localhost"
        assert p.features.find(q(NS_TLS, "starttls")) is None
    finally:
        p.close()


def test_certificate_names_the_service_subdomains(make_run):
    """Other servers check the certificate for every domain a stanza comes from: the rooms'
    and the upload service's too."""
    run, ports = make_run
    ctx = ssl.create_default_context(cafile=str(run / "cert.pem"))
    for name in ("localhost", "conference.localhost", "upload.localhost"):
        with socket.create_connection(("127.0.0.1", ports["s2s_tls"]), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:  # the name check is here
                assert t.version() in ("TLSv1.2", "TLSv1.3")
    out = subprocess.run(["openssl", "x509", "-in", str(run / "cert.pem"), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True, timeout=30).stdout
    assert "DNS:conference.localhost" in out and "DNS:upload.localhost" in out, out

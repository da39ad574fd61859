"""LocalStack: drives deploy/stack for the tests of this directory (see conftest.py)."""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from xmpp_client import XMPPClient  # noqa: E402

DOMAIN = "localhost"
NFE = 2
NS2S = 2  # s2s frontends (other servers only), counted among the router's frontends
# Liveness settings of this stack (deploy/xmpp.env has the production defaults).
HEARTBEAT_MS = 500
FRONTEND_TIMEOUT_MS = 2500
ROUTER_TIMEOUT_MS = 1500
BAD_LOG_WORDS = ("AddressSanitizer", "LeakSanitizer", "runtime error")
ERROR_LEVEL_LINE = re.compile(r"^\S+ \S+ error: .*$", re.M)


def build_dir():
    b = Path(os.environ.get("XMPP_BUILD", "build"))
    return b if b.is_absolute() else ROOT / b


def free_base_port():
    """A run of 70 free ports: the stack's internal ones (deploy/stack, --base-port; the s2s
    frontends' at base+62 and up), and HAProxy's at base+30 (STARTTLS), base+31 (direct TLS),
    base+32 (WebSocket), base+33 (servers, STARTTLS) and base+34 (servers, direct TLS)."""
    import socket
    for _ in range(200):
        base = 20000 + (uuid.uuid4().int % 2000) * 20
        ok = True
        for p in list(range(base, base + 70)):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


class User:
    def __init__(self, localpart, password):
        self.localpart = localpart
        self.password = password
        self.jid = "%s@%s" % (localpart, DOMAIN)


class LocalStack:
    def __init__(self, tmp):
        self.dir = tmp / "stack"
        self.base = free_base_port()
        self.port = self.base + 30
        self.tls_port = self.base + 31
        self.ws_port = self.base + 32
        self.s2s_port = self.base + 33
        self.s2s_tls_port = self.base + 34
        # The certificate names localhost; HAProxy listens on 127.0.0.1.
        self.ws_url = "wss://localhost:%d/xmpp-websocket" % self.ws_port
        self.cafile = str(self.dir / "cert.pem")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("XMPP_")}
        self.env.update({
            "XMPP_STACK_DIR": str(self.dir),
            "XMPP_STACK_BUILD": str(build_dir()),
            "XMPP_HEARTBEAT_INTERVAL": str(HEARTBEAT_MS),
            "XMPP_FRONTEND_TIMEOUT": str(FRONTEND_TIMEOUT_MS),
            "XMPP_ROUTER_TIMEOUT": str(ROUTER_TIMEOUT_MS),
        })

    def run(self, *args, check=True, timeout=60):
        r = subprocess.run([str(ROOT / "deploy" / "stack")] + [str(a) for a in args],
                           env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("deploy/stack %s failed (%d):\n%s%s"
                               % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
        return r

    def up(self):
        self.run("up", "--frontends", NFE, "--base-port", self.base, "--port", self.port,
                 "--tls-port", self.tls_port, "--ws-port", self.ws_port, "--s2s", NS2S,
                 "--s2s-port", self.s2s_port, "--s2s-tls-port", self.s2s_tls_port, timeout=120)

    def down(self):
        self.run("down", check=False, timeout=60)

    def log(self, service):
        try:
            return (self.dir / "logs" / ("%s.log" % service)).read_text(errors="replace")
        except OSError:
            return ""

    def problems(self):
        out = []
        for service in (["router"] + ["c2s%d" % i for i in range(1, NFE + 1)]
                        + ["s2s%d" % i for i in range(1, NS2S + 1)]):
            text = self.log(service)
            for w in BAD_LOG_WORDS:
                if w in text:
                    out.append("%s log contains %r:\n%s" % (service, w, text[-20000:]))
            errs = ERROR_LEVEL_LINE.findall(text)
            if errs:
                out.append("%s logged error-level lines, first: %s" % (service, errs[0]))
        return out

    def new_user(self, prefix="s"):
        u = User("%s%s" % (prefix, uuid.uuid4().hex[:12]), "pw-" + uuid.uuid4().hex[:12])
        self.run("ctl", "adduser", u.jid, u.password)
        return u

    def client(self, port=None, timeout=5.0):
        return XMPPClient(port or self.port, cafile=self.cafile, timeout=timeout)

    def frontend_of(self, c, user, timeout=5.0):
        """Which frontend serves this client: the one that logged its login from the
        client's own address (the PROXY header carries it through HAProxy). A WebSocket
        client (ws_client.WSLibClient) has its address in local_address."""
        addr = getattr(c, "local_address", None) or "127.0.0.1:%d" % c.sock.getsockname()[1]
        needle = "authenticated %s from %s" % (user.jid, addr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(1, NFE + 1):
                if needle in self.log("c2s%d" % i):
                    return "c2s%d" % i
            time.sleep(0.05)
        raise AssertionError("no frontend logged %r" % needle)


def online(lstack, clients, user, resource, priority=None, on=None, not_on=None):
    """Logs in through HAProxy (retrying until the client lands on frontend `on`, or on
    another one than `not_on`), sends initial presence and waits until the router has it.
    Returns (client, frontend name)."""
    for _ in range(12):
        c = clients()
        c.login(user.localpart, user.password, resource=resource)
        fe = lstack.frontend_of(c, user)
        if (on is None or fe == on) and (not_on is None or fe != not_on):
            break
        c.close()
    else:
        raise AssertionError("HAProxy never sent %s to the wanted frontend" % user.jid)
    c.presence(priority)
    token = "sync-" + uuid.uuid4().hex[:8]
    c.message(c.jid, token)
    c.wait_message(token, sender=c.jid)
    return c, fe

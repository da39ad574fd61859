"""Fixtures for the integration tests: a real redis-server, session-router and c2s-frontend
on loopback, started once per session; extra frontends per test; users via xmppctl.

Run from the project root:
    XMPP_BUILD=build /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

Against a stack that already runs (the compose stack, deploy/stack, a deployment), set
XMPP_HOST and/or XMPP_PORT; then nothing is started here:
    XMPP_HOST     address of the server or load balancer (default 127.0.0.1)
    XMPP_PORT     its STARTTLS port (default 5222)
    XMPP_ADDUSER_CMD  command that creates an account, called as CMD JID PASSWORD (required),
                  e.g. 'docker-compose exec -T router xmppctl adduser'
    XMPP_CAFILE   certificate to trust (optional: without it TLS is not verified, and the
                  tests that need the certificate are skipped)
    XMPP_TLS_PORT its direct TLS port (optional: test_stack_lb.py)
    XMPP_RESTART_ROUTER_CMD  command that restarts the router (optional: test_stack_lb.py)
The domain must be localhost. Tests that start, stop or kill processes, read server logs,
or use Redis or xmppctl directly are skipped with a message saying so.

Under valgrind (`make valgrindtest`, or XMPP_VALGRIND=1 with a non-sanitizer build), every
session-router and c2s-frontend started here runs under memcheck (VALGRIND_ARGS; extra
options in XMPP_VALGRIND_ARGS), with one log per process beside its stderr log
(NAME.valgrind.log). Start and stop timeouts are multiplied by XMPP_VALGRIND_SCALE
(default 6), client waits by XMPP_TIMEOUT_SCALE (default 4). When a process stops, any
memcheck error or definitely/indirectly lost block in its log fails the test that stopped
it, like an error line in its stderr does.
"""

from contextlib import contextmanager
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from xmpp_client import XMPPClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "localhost"
REDIS_PREFIX = "itest:"
# The upload limits of the test configuration (Stack.write_config).
UPLOAD_MAX_SIZE = 1 << 20
UPLOAD_QUOTA = 4 << 20
BAD_LOG_WORDS = ("AddressSanitizer", "LeakSanitizer", "runtime error", "ERROR")

VALGRIND = os.environ.get("XMPP_VALGRIND", "") not in ("", "0")
VALGRIND_SCALE = float(os.environ.get("XMPP_VALGRIND_SCALE") or 6) if VALGRIND else 1.0
VALGRIND_ARGS = [
    "valgrind", "--tool=memcheck", "--leak-check=full",
    "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
    "--track-origins=no", "--error-exitcode=99", "--num-callers=30",
    "--child-silent-after-fork=yes",
]
if VALGRIND:
    # The raw client's default waits.
    import xmpp_client  # noqa: E402
    xmpp_client.TIMEOUT_SCALE = float(os.environ.get("XMPP_TIMEOUT_SCALE") or 4)
    _supp = ROOT / "mk" / "valgrind.supp"
    if _supp.exists():
        VALGRIND_ARGS.append("--suppressions=%s" % _supp)
    VALGRIND_ARGS += os.environ.get("XMPP_VALGRIND_ARGS", "").split()

READY_TIMEOUT = 10.0 * VALGRIND_SCALE
STOP_TIMEOUT = 5.0 * VALGRIND_SCALE


def valgrind_skip(reason):
    """Skips the calling test when the servers run under valgrind (reason: why it cannot
    work at valgrind's speed)."""
    if VALGRIND:
        pytest.skip("not under valgrind: " + reason)


def valgrind_log_path(log):
    log = Path(log)
    return log.with_name(log.stem + ".valgrind.log")


def server_argv(argv, log):
    """argv of a server process, prefixed with valgrind (log beside `log`) when enabled."""
    if not VALGRIND:
        return [str(a) for a in argv]
    vlog = valgrind_log_path(log)
    try:
        vlog.unlink()
    except OSError:
        pass
    return VALGRIND_ARGS + ["--log-file=%s" % vlog] + [str(a) for a in argv]


# memcheck's error kinds, for the log of a process that was killed before its summary.
VALGRIND_ERROR_LINE = re.compile(
    r"^==\d+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|"
    r"Syscall param|Mismatched free|Source and destination overlap|Argument '.*' of function|"
    r"Process terminating with default action|.* bytes in .* blocks are (definitely|indirectly) lost)",
    re.M)


def valgrind_problems(name, log):
    """Problems found in the valgrind log of a server process (empty when not enabled)."""
    if not VALGRIND:
        return []
    vlog = valgrind_log_path(log)
    text = read_log(vlog)
    if not text:
        return ["%s: valgrind log %s missing or empty" % (name, vlog)]
    problems = []
    summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
    if summary and int(summary[-1]) > 0:
        problems.append("%s: valgrind reports %s error(s) (%s)" % (name, summary[-1], vlog))
    hits = VALGRIND_ERROR_LINE.findall(text)
    if hits and not problems:
        problems.append("%s: valgrind log has %d error record(s) (%s)" % (name, len(hits), vlog))
    for kind in ("definitely", "indirectly"):
        m = re.findall(r"%s lost: ([\d,]+) bytes" % kind, text)
        if m and m[-1] != "0":
            problems.append("%s: valgrind: %s lost %s bytes (%s)" % (name, kind, m[-1], vlog))
    if problems:
        problems.append("---- %s valgrind log (%s) ----\n%s" % (name, vlog, text[-30000:]))
    return problems


def build_dir():
    b = Path(os.environ.get("XMPP_BUILD", "build"))
    return b if b.is_absolute() else ROOT / b


def _port_block():
    """The ports free_port() hands out: below the kernel's ephemeral range, where no client
    connection gets its source port (a port from bind(0) could be taken as one by another
    pytest-xdist worker's client before the server binds it), split among the workers."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first = 10000
    if low - first < 2000:
        return None
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (low - first) // max(workers, 1)
    return first + (index % max(workers, 1)) * size, size


_PORTS = _port_block()
_port_next = [None]


def free_port():
    if _PORTS is not None:
        start, size = _PORTS
        if _port_next[0] is None:
            _port_next[0] = int.from_bytes(os.urandom(2), "big") % size
        for _ in range(size):
            port = start + _port_next[0]
            _port_next[0] = (_port_next[0] + 1) % size
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d\n%s"
                               % (proc.returncode, port, read_log(log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        if VALGRIND and log is not None and Path(log).name.startswith("frontend-"):
            # A frontend answers on its port long before its router link is up under
            # valgrind; tests that wait only for the port expect logins to work.
            # (At most 15 s: a test may keep the link down on purpose.)
            wait_log_text(log, "router link: router epoch",
                          min(deadline, time.monotonic() + 15), proc)
        return
    raise RuntimeError("nothing listening on 127.0.0.1:%d after %.0fs\n%s"
                       % (port, timeout, read_log(log)))


def wait_log_text(log, text, deadline, proc=None):
    """Waits until `text` is in the log (or the deadline passes, or the process exits);
    returns whether it appeared."""
    while time.monotonic() < deadline:
        if text in read_log(log):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def read_log(path):
    if path is None:
        return ""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def clean_env(overrides=None):
    """The environment for the server processes: no stray XMPP_* from the caller (which
    would override config keys), plus the given XMPP_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPP_")}
    for k, v in (overrides or {}).items():
        env["XMPP_" + k.upper()] = str(v)
    return env


# The servers' own error-level lines ("<time> c2s-frontend error: ...").
ERROR_LEVEL_LINE = re.compile(r"^\S+ \S+ error: .*$", re.M)


def stop_process(proc, name, log, allow_error_lines=False, killed=False):
    """SIGTERM; returns a list of problems (empty when it exited 0 within STOP_TIMEOUT and
    its log is clean). killed: it was SIGKILLed on purpose, only its log is checked."""
    problems = []
    if killed:
        pass
    elif proc.poll() is not None:
        problems.append("%s had already exited with status %s before shutdown"
                        % (name, proc.returncode))
    else:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            problems.append("%s did not exit within %.0fs of SIGTERM" % (name, STOP_TIMEOUT))
        else:
            if proc.returncode != 0:
                problems.append("%s exited with status %s after SIGTERM" % (name, proc.returncode))
    text = read_log(log)
    for word in BAD_LOG_WORDS:
        if word in text:
            problems.append("%s stderr contains %r" % (name, word))
    if not allow_error_lines:
        errs = ERROR_LEVEL_LINE.findall(text)
        if errs:
            problems.append("%s logged %d error-level line(s), first: %s" % (name, len(errs), errs[0]))
    if problems:
        problems.append("---- %s stderr (%s) ----\n%s" % (name, log, text[-20000:]))
    return problems + valgrind_problems(name, log)


class Redis:
    """Minimal RESP client over a raw socket."""

    def __init__(self, port):
        self.port = port

    def command(self, *args, timeout=5.0):
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return self._reply(f)

    def _reply(self, f):
        line = f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis error: %s" % rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply(f) for _ in range(n)]
        raise RuntimeError("bad RESP reply %r" % line)

    def dump_all(self):
        """{key: value-bytes} for every key, all value types flattened to bytes."""
        out = {}
        for key in self.command("KEYS", "*"):
            t = self.command("TYPE", key)
            if t == "string":
                v = [self.command("GET", key)]
            elif t == "hash":
                v = self.command("HGETALL", key)
            elif t == "list":
                v = self.command("LRANGE", key, 0, -1)
            elif t == "set":
                v = self.command("SMEMBERS", key)
            elif t == "zset":
                v = self.command("ZRANGE", key, 0, -1, "WITHSCORES")
            elif t == "stream":
                v = [repr(self.command("XRANGE", key, "-", "+")).encode()]
            else:
                v = []
            out[key] = b"\n".join(x if isinstance(x, bytes) else str(x).encode() for x in v if x is not None)
        return out


def start_redis(port, workdir, log):
    """Starts redis-server on 127.0.0.1:port and waits for PING. Returns (proc, logfile)."""
    logf = open(log, "ab")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    r = Redis(port)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if r.command("PING", timeout=1.0) == "PONG":
                return proc, logf
        except (OSError, ConnectionError):
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("redis-server did not start\n" + read_log(log))
        time.sleep(0.05)


def stop_redis(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class User:
    def __init__(self, localpart, password):
        self.localpart = localpart
        self.password = password
        self.jid = "%s@%s" % (localpart, DOMAIN)

    def __repr__(self):
        return "User(%s)" % self.jid


def unique_name(prefix="u"):
    return "%s%s" % (prefix, uuid.uuid4().hex[:12])


def wait_probe_login(fe, probe, cafile=None, tls=True, timeout=READY_TIMEOUT):
    """Waits until frontend `fe` (.name, .port, .proc, .log) accepts TCP and `probe` can log
    in and ping (the router link may lag); cafile None: TLS not verified."""
    wait_port(fe.port, timeout, fe.proc, fe.log)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if fe.proc.poll() is not None:
            break
        c = None
        try:
            c = XMPPClient(fe.port, cafile=cafile, timeout=2.0)
            c.login(probe.localpart, probe.password, tls=tls)
            c.ping()
            return
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            last = e
            time.sleep(0.2)
        finally:
            if c is not None:
                c.close()
    raise RuntimeError("frontend %s not ready: probe login failed: %r (exit status %s)\n%s"
                       % (fe.name, last, fe.proc.poll(), read_log(fe.log)))


class Frontend:
    """A c2s-frontend process. With port=None it gets a free port, a unique frontend_name,
    and both plus `overrides` are passed as XMPP_* environment variables; otherwise it runs
    on the config file alone."""

    def __init__(self, stack, tag, overrides=None, port=None):
        self.stack = stack
        self.killed = False
        self.terminated = False
        self.allow_error_lines = False
        self.log = stack.tmp / ("frontend-%s.log" % tag)
        if port is None:
            self.port = free_port()
            self.name = "fe-%s" % tag
            self.ws_port, self.wss_port = free_port(), free_port()
            env = {"c2s_listen": "127.0.0.1:%d" % self.port, "frontend_name": self.name,
                   "ws_listen": "127.0.0.1:%d" % self.ws_port,
                   "wss_listen": "127.0.0.1:%d" % self.wss_port}
            env.update(overrides or {})
            if env.get("tls_cert") == "" and "wss_listen" not in (overrides or {}):
                env["wss_listen"] = ""  # no certificate: no wss either
                self.wss_port = None
        else:
            self.port = port
            self.name = "fe1"
            # XMPP over WebSocket (RFC 7395) by environment, not in the shared file, so
            # that other frontends started from the file do not fight over the ports.
            self.ws_port, self.wss_port = stack.ws_port, stack.wss_port
            env = {"ws_listen": "127.0.0.1:%d" % self.ws_port,
                   "wss_listen": "127.0.0.1:%d" % self.wss_port}
            env.update(overrides or {})
        self.overrides = env
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            server_argv([stack.bin("c2s-frontend"), "-c", stack.config], self.log),
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            env=clean_env(env), cwd=str(stack.tmp))

    def wait_ready(self, tls="auto"):
        """Port accepts TCP and the probe account can log in (router link may lag)."""
        wait_probe_login(self, self.stack.probe, cafile=self.stack.cafile, tls=tls)

    def terminate(self):
        """SIGTERM now; returns the exit status (None if it did not exit within
        STOP_TIMEOUT). The log is still checked at the end of the test."""
        self.terminated = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL (a crash, as far as the router can tell)."""
        self.killed = True
        self.proc.kill()
        self.proc.wait(5)

    def stop(self):
        problems = stop_process(self.proc, "c2s-frontend " + self.name, self.log,
                                self.allow_error_lines, self.killed or self.terminated)
        self.logf.close()
        return problems


class Stack:
    def __init__(self, tmp):
        self.tmp = tmp
        self.build = build_dir()
        self.domain = DOMAIN
        self.procs = []
        self.frontend = None
        self._extra = 0

    def bin(self, name):
        p = self.build / name
        if not os.access(p, os.X_OK):
            raise RuntimeError("binary %s missing (build with make first)" % p)
        return p

    # -------------------------------------------------------------- setup
    def make_cert(self):
        self.cafile = str(self.tmp / "cert.pem")
        self.keyfile = str(self.tmp / "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.keyfile, "-out", self.cafile, "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=30)

    def start_redis(self):
        self.redis_port = free_port()
        self.redis_log = self.tmp / "redis.log"
        self.redis_proc, self.redis_logf = start_redis(self.redis_port, self.tmp, self.redis_log)
        self.redis = Redis(self.redis_port)

    def write_config(self):
        self.router_port = free_port()
        self.port = free_port()
        # The main router's admin endpoint. The file turns it off (admin_bind empty) for
        # every other router started with it (private stacks, one-off routers), so they
        # never fight over a port; start_router turns it on for the main router.
        self.admin_port = free_port()
        self.admin_endpoint = "tcp://127.0.0.1:%d" % self.admin_port
        self.ws_port, self.wss_port = free_port(), free_port()
        self.upload_port = free_port()
        self.upload_dir = self.tmp / "uploads"
        self.upload_secret_file = self.tmp / "upload.secret"
        self.upload_secret_file.write_text("# shared by the router and upload-server\n%s\n"
                                           % uuid.uuid4().hex)
        self.upload_secret_file.chmod(0o600)
        self.config = self.tmp / "xmpp.conf"
        self.config.write_text(
            "# integration test configuration\n"
            "domain = %s\n"
            "log_level = info\n"
            "c2s_listen = 127.0.0.1:%d\n"
            "tls_cert = %s\n"
            "tls_key = %s\n"
            "require_tls = true\n"
            "frontend_name = fe1\n"
            "router_endpoint = tcp://127.0.0.1:%d\n"
            "router_bind = tcp://127.0.0.1:%d\n"
            "redis_host = 127.0.0.1\n"
            "redis_port = %d\n"
            "redis_prefix = %s\n"
            "admin_bind =\n"
            "admin_connect = %s\n"
            "max_stanza_size = 262144\n"
            "max_depth = 64\n"
            "# the whole suite connects from 127.0.0.1: per-address limits would throttle\n"
            "# it (test_limits.py turns them on for its own frontends)\n"
            "max_connections_per_ip = 0\n"
            "connection_rate_per_ip = 0\n"
            "auth_failures_per_ip = 0\n"
            "auth_failures_per_account = 0\n"
            "# HTTP File Upload (XEP-0363): the router hands out slots for the upload\n"
            "# process the upload_server fixture starts; small limits for the tests\n"
            "upload_url = http://127.0.0.1:%d/upload\n"
            "upload_listen = 127.0.0.1:%d\n"
            "upload_dir = %s\n"
            "upload_secret_file = %s\n"
            "upload_max_size = %d\n"
            "upload_quota = %d\n"
            "upload_threads = 2\n"
            % (DOMAIN, self.port, self.cafile, self.keyfile, self.router_port,
               self.router_port, self.redis_port, REDIS_PREFIX, self.admin_endpoint,
               self.upload_port, self.upload_port, self.upload_dir, self.upload_secret_file,
               UPLOAD_MAX_SIZE, UPLOAD_QUOTA))

    def start_router(self):
        self.router_log = self.tmp / "router.log"
        self.router_logf = open(self.router_log, "wb")
        self.router = subprocess.Popen(
            server_argv([self.bin("session-router"), "-c", self.config], self.router_log),
            stdin=subprocess.DEVNULL, stdout=self.router_logf, stderr=self.router_logf,
            env=clean_env({"admin_bind": self.admin_endpoint}), cwd=str(self.tmp))

    def start(self):
        self.make_cert()
        self.start_redis()
        self.write_config()
        self.probe = self.new_user("probe")
        self.start_router()
        self.frontend = Frontend(self, "main", port=self.port)
        self.frontend.wait_ready(tls=True)

    def start_extra_frontend(self, **overrides):
        self._extra += 1
        fe = Frontend(self, "extra%d" % self._extra, overrides)
        try:
            fe.wait_ready()
        except Exception:
            fe.stop()
            raise
        return fe

    def stop(self):
        problems = []
        if self.frontend is not None:
            problems += self.frontend.stop()
        if getattr(self, "router", None) is not None:
            problems += stop_process(self.router, "session-router", self.router_log)
            self.router_logf.close()
        if getattr(self, "redis_proc", None) is not None:
            stop_redis(self.redis_proc)
            self.redis_logf.close()
        return problems

    # -------------------------------------------------------------- helpers
    def ctl(self, *args, input=None, env=None, timeout=15):
        """Runs xmppctl -c CONFIG ARGS...; returns the CompletedProcess (text mode)."""
        return subprocess.run(
            [str(self.bin("xmppctl")), "-c", str(self.config)] + [str(a) for a in args],
            input=input, stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True, text=True, env=clean_env(env), timeout=timeout, cwd=str(self.tmp))

    def new_user(self, prefix="u", password=None):
        name = unique_name(prefix)
        password = password or "pw-" + uuid.uuid4().hex[:16]
        user = User(name, password)
        r = self.ctl("adduser", user.jid, password)
        if r.returncode != 0:
            raise RuntimeError("xmppctl adduser %s failed (%d): %s" % (user.jid, r.returncode, r.stderr))
        return user

    def client(self, port=None, timeout=5.0):
        return XMPPClient(port or self.port, domain=DOMAIN, cafile=self.cafile, timeout=timeout)


REMOTE = bool(os.environ.get("XMPP_HOST") or os.environ.get("XMPP_PORT"))


def skip_remote(what):
    pytest.skip("%s: needs the private local stack, but the target is the running stack at "
                "%s:%s (XMPP_HOST/XMPP_PORT)" % (what, os.environ.get("XMPP_HOST", "127.0.0.1"),
                                                 os.environ.get("XMPP_PORT", "5222")))


class RemoteStack:
    """A stack that runs already (XMPP_HOST / XMPP_PORT): only what a client sees of it.
    Any other attribute of Stack (processes, logs, Redis, xmppctl) skips the test."""

    remote = True

    def __init__(self, tmp):
        self.tmp = tmp
        self.domain = DOMAIN
        self.host = os.environ.get("XMPP_HOST", "127.0.0.1")
        self.port = int(os.environ.get("XMPP_PORT", "5222"))
        self._cafile = os.environ.get("XMPP_CAFILE") or None
        self._adduser = os.environ.get("XMPP_ADDUSER_CMD", "")
        self._extra = 0
        if not self._adduser:
            raise RuntimeError("XMPP_HOST/XMPP_PORT given without XMPP_ADDUSER_CMD: the tests "
                               "need a command that creates accounts (CMD JID PASSWORD)")

    def __getattr__(self, name):
        if name == "cafile":
            pytest.skip("needs the server certificate: set XMPP_CAFILE")
        skip_remote("stack.%s" % name)

    def start(self):
        wait_port_on(self.host, self.port, READY_TIMEOUT)
        self.probe = self.new_user("probe")
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            c = self.client()
            try:
                c.login(self.probe.localpart, self.probe.password)
                c.ping()
                return
            except Exception:  # noqa: BLE001 - not ready yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                c.close()

    def stop(self):
        return []

    def ctl(self, *args, **kw):
        skip_remote("xmppctl")

    def new_user(self, prefix="u", password=None):
        import shlex
        name = unique_name(prefix)
        password = password or "pw-" + uuid.uuid4().hex[:16]
        user = User(name, password)
        r = subprocess.run(shlex.split(self._adduser) + [user.jid, password],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("XMPP_ADDUSER_CMD %r %s failed (%d): %s%s"
                               % (self._adduser, user.jid, r.returncode, r.stdout, r.stderr))
        return user

    def client(self, port=None, timeout=5.0):
        return XMPPClient(port or self.port, host=self.host, domain=DOMAIN, cafile=self._cafile,
                          timeout=timeout)


def wait_port_on(host, port, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("nothing listening on %s:%d" % (host, port))
            time.sleep(0.1)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xmpp")
    s = RemoteStack(tmp) if REMOTE else Stack(tmp)
    try:
        s.start()
    except BaseException:
        problems = s.stop()
        print("\n".join(problems))
        raise
    yield s
    problems = s.stop()
    assert not problems, "\n".join(problems)


# Tests that must not share the machine with other tests: their assertions bound time
# (a deadline, a rate, a lock-out) or they load the machine enough to stretch the timing of
# others (floods, 100,000 stanzas, memory watched while clients hammer). `make itest` runs
# the rest spread over pytest-xdist workers (-m "not serial", each worker with its own
# stack), then these alone (-m serial). A bare name marks the whole file.
SERIAL = {
    "test_abuse.py",
    "test_limits.py",
    "test_stack_frontend.py::test_login_while_router_away_fails_fast",
    "test_stack_frontend.py::test_request_to_a_hung_router_times_out",
    "test_stack_lb.py",          # restarts the shared router of a running stack
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: not run beside other tests (make itest runs these after the "
        "parallel part, one at a time)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        fname = item.path.name
        name = getattr(item, "originalname", item.name)
        if fname in SERIAL or "%s::%s" % (fname, name) in SERIAL:
            item.add_marker(pytest.mark.serial)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def _server_logs_on_failure(request, stack):
    """On a test failure, prints what the servers logged during that test."""
    if getattr(stack, "remote", False):
        yield  # the servers' logs are not ours to read
        return
    logs = [stack.frontend.log, stack.router_log]
    sizes = {p: p.stat().st_size if p.exists() else 0 for p in logs}
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for p in logs:
            with open(p, "rb") as f:
                f.seek(sizes[p])
                text = f.read().decode(errors="replace")
            print("---- %s during this test ----\n%s" % (p.name, text[-8000:]))


@pytest.fixture
def new_user(stack):
    """new_user(prefix='u', password=None) -> User created with xmppctl adduser."""
    return stack.new_user


@pytest.fixture
def clients(stack):
    """clients(port=None) -> a fresh XMPPClient; all are closed at the end of the test."""
    made = []

    def make(port=None, timeout=5.0):
        c = stack.client(port, timeout)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


@pytest.fixture
def login(clients):
    """login(user, resource=None, priority=None, mech='SCRAM-SHA-256', port=None)
    -> logged-in client (bound; available with `priority` unless priority is False)."""
    def do(user, resource=None, priority=None, mech="SCRAM-SHA-256", port=None, tls=True):
        c = clients(port)
        c.login(user.localpart, user.password, mech=mech, resource=resource, tls=tls)
        if priority is not False:
            c.presence(priority)
            # Round-trip a message to our own full JID: once it is back, the router has
            # processed the presence sent before it on this stream.
            token = "sync-" + uuid.uuid4().hex[:8]
            c.message(c.jid, token)
            c.wait_message(token, sender=c.jid)
        return c
    return do


@pytest.fixture
def extra_frontend(stack):
    """extra_frontend(**overrides) -> Frontend (attribute .port) started with the given
    config keys overridden through XMPP_* environment variables, against the same router
    and Redis. Stopped (and checked for a clean exit) at the end of the test."""
    if getattr(stack, "remote", False):
        skip_remote("starts its own frontend")
    started = []

    def start(**overrides):
        fe = stack.start_extra_frontend(**overrides)
        started.append(fe)
        return fe
    yield start
    problems = []
    for fe in started:
        problems += fe.stop()
    assert not problems, "\n".join(problems)


class UploadServer:
    """The upload-server process (XEP-0363's HTTP side) on the stack's config file: it
    listens on upload_listen and stores under upload_dir. .url is the base of the slots."""

    def __init__(self, stack, tag="main", overrides=None):
        """overrides: config keys set through XMPP_* (with upload_listen, a port of its own)."""
        self.stack = stack
        self.port = stack.upload_port
        env = dict(overrides or {})
        if "upload_listen" in env:
            self.port = int(env["upload_listen"].rsplit(":", 1)[1])
        self.dir = stack.upload_dir
        scheme = "https" if env.get("upload_tls_cert") else "http"
        self.url = "%s://127.0.0.1:%d/upload" % (scheme, self.port)
        self.log = stack.tmp / ("upload-server-%s.log" % tag)
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            server_argv([stack.bin("upload-server"), "-c", stack.config], self.log),
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            env=clean_env(env), cwd=str(stack.tmp))
        wait_port(self.port, READY_TIMEOUT, self.proc, self.log)

    def stop(self):
        problems = stop_process(self.proc, "upload-server", self.log)
        self.logf.close()
        return problems


@pytest.fixture(scope="session")
def upload_server(stack):
    """The upload-server process of the stack, started on first use (session-wide)."""
    if getattr(stack, "remote", False):
        skip_remote("starts its own upload-server")
    up = UploadServer(stack)
    yield up
    problems = up.stop()
    assert not problems, "\n".join(problems)


class PrivateStack:
    """Its own redis-server, session-router and c2s-frontend (sharing only the config file
    and certificate of the main stack, with ports and Redis overridden through XMPP_*), for
    tests that stop or restart pieces."""

    def __init__(self, stack, tag):
        self.stack = stack
        self.tmp = stack.tmp / tag
        self.tmp.mkdir()
        self.redis_port = free_port()
        self.router_port = free_port()
        self.redis_log = self.tmp / "redis.log"
        self.redis_proc = None
        self.router = None
        self.router_logs = []
        self.frontend = None
        self.env = {"redis_port": self.redis_port,
                    "router_bind": "tcp://127.0.0.1:%d" % self.router_port,
                    "router_endpoint": "tcp://127.0.0.1:%d" % self.router_port}
        self.problems = []

    def start_redis(self):
        self.redis_proc, logf = start_redis(self.redis_port, self.tmp, self.redis_log)
        logf.close()

    def stop_redis(self):
        stop_redis(self.redis_proc)
        self.redis_proc = None

    def start_router(self):
        log = self.tmp / ("router-%d.log" % (len(self.router_logs) + 1))
        self.router_logs.append(log)
        with open(log, "wb") as logf:
            self.router = subprocess.Popen(
                server_argv([self.stack.bin("session-router"), "-c", self.stack.config], log),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                env=clean_env(self.env), cwd=str(self.tmp))

    def stop_router(self, allow_error_lines=True):
        self.problems += stop_process(self.router, "private session-router", self.router_logs[-1],
                                      allow_error_lines)
        self.router = None

    def start_frontend(self, **overrides):
        env = dict(self.env)
        env.update(overrides)
        self.stack._extra += 1
        self.frontend = Frontend(self.stack, "private%d" % self.stack._extra, env)
        self.frontend.allow_error_lines = True
        return self.frontend

    def ctl(self, *args, **kw):
        env = dict(self.env)
        env.update(kw.pop("env", {}) or {})
        return self.stack.ctl(*args, env=env, **kw)

    def new_user(self, prefix="p"):
        user = User(unique_name(prefix), "pw-" + uuid.uuid4().hex[:12])
        r = self.ctl("adduser", user.jid, user.password)
        assert r.returncode == 0, r.stderr
        return user

    def try_login(self, user, timeout=3.0):
        """'success', a SASL failure condition, or an exception's repr."""
        c = XMPPClient(self.frontend.port, cafile=self.stack.cafile, timeout=timeout)
        try:
            c.open_stream()
            c.starttls()
            return c.auth_scram(user.localpart, user.password)
        except Exception as e:  # noqa
            return repr(e)
        finally:
            c.close()

    def wait_login(self, user, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.try_login(user)
            if last == "success":
                return
            time.sleep(0.2)
        raise AssertionError("login on the private stack still fails after %.0fs: %s"
                             % (timeout, last))

    def stop(self):
        if self.frontend is not None:
            self.problems += self.frontend.stop()
        if self.router is not None:
            self.stop_router()
        if self.redis_proc is not None:
            self.stop_redis()
        return self.problems


@contextmanager
def running_private_stack(stack, tag, router_env=None, frontend_env=None):
    """A PrivateStack with Redis, router (its config keys overridden by `router_env`) and
    frontend (`frontend_env`) started and a login working; stopped and checked for a clean
    exit afterwards."""
    if getattr(stack, "remote", False):
        skip_remote("starts its own Redis, router and frontend")
    ps = PrivateStack(stack, unique_name(tag))
    try:
        ps.start_redis()
        saved = dict(ps.env)
        ps.env.update(router_env or {})
        ps.start_router()
        ps.env = saved
        ps.start_frontend(**(frontend_env or {}))
        ps.probe = ps.new_user("probe")
        wait_port(ps.frontend.port, READY_TIMEOUT, ps.frontend.proc, ps.frontend.log)
        ps.wait_login(ps.probe)
    except BaseException:
        print("\n".join(ps.stop()))
        raise
    yield ps
    problems = ps.stop()
    assert not problems, "\n".join(problems)


@pytest.fixture
def private_stack(stack):
    """A PrivateStack with Redis, router and frontend started and a login working."""
    with running_private_stack(stack, "private") as ps:
        yield ps

"""A private stack for the link and Redis security tests (test_link_security.py,
test_redis_security.py): its own redis-server (optionally with a password or TLS), router
and frontends, each with its own config file (the main stack's, plus extra lines) and
XMPP_* overrides, so that the tests can give each process different keys."""

import re
import socket
import subprocess
import time
import uuid

import pytest

from conftest import (READY_TIMEOUT, User, clean_env, free_port, read_log, server_argv,
                      stop_process, unique_name, wait_port)
from xmpp_client import XMPPClient

Z85 = r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}"


def keygen(stack, role=None):
    """Runs xmppctl keygen [role]; returns (output text, {key: value})."""
    args = [str(stack.bin("xmppctl")), "keygen"] + ([role] if role else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL, env=clean_env())
    assert r.returncode == 0, r.stderr
    values = dict(re.findall(r"^(\w+) = (\S+)$", r.stdout, re.M))
    return r.stdout, values


def redis_command(port, *args, password=None, timeout=3.0):
    """One RESP command over a fresh connection (AUTH first when a password is given);
    returns the reply, or raises RuntimeError with Redis's error text."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rb")
        cmds = ([("AUTH", password)] if password else []) + [args]
        for cmd in cmds:
            out = b"*%d\r\n" % len(cmd)
            for a in cmd:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            line = f.readline()
            if line.startswith(b"-"):
                raise RuntimeError(line[1:].decode().strip())
            if line.startswith(b"$") and int(line[1:]) >= 0:
                data = f.read(int(line[1:]) + 2)[:-2]
                line = b"+" + data + b"\r\n"
        return line[1:].decode().strip()


class SecureStack:
    def __init__(self, stack, extra_config=""):
        self.stack = stack
        self.tmp = stack.tmp / unique_name("sec")
        self.tmp.mkdir()
        self.config = self.tmp / "xmpp.conf"
        self.config.write_text(stack.config.read_text() + "\n# test_*_security\n" + extra_config)
        self.redis_port = free_port()
        self.router_port = free_port()
        self.env = {"redis_port": self.redis_port,
                    "router_bind": "tcp://127.0.0.1:%d" % self.router_port,
                    "router_endpoint": "tcp://127.0.0.1:%d" % self.router_port}
        self.redis_proc = None
        self.redis_password = None
        self.routers = []      # (proc, log, allow_error_lines)
        self.frontends = []    # (proc, log, name, allow_error_lines)
        self.problems = []

    # ------------------------------------------------------------------ processes
    def start_redis(self, *extra, password=None, port=None, ping=None):
        """redis-server on self.redis_port (or `port`) with extra arguments; waits until it
        answers PING (or until ping() returns true)."""
        self.redis_password = password
        log = self.tmp / "redis.log"
        self.redis_logf = open(log, "ab")
        args = ["redis-server", "--port", str(self.redis_port if port is None else port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.tmp)] + list(extra)
        if password:
            args += ["--requirepass", password]
        self.redis_proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.redis_logf,
                                           stderr=self.redis_logf)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                if ping is not None:
                    if ping():
                        return
                elif redis_command(self.redis_port, "PING", password=password) == "PONG":
                    return
            except (OSError, RuntimeError):  # ssl.SSLError is an OSError
                pass
            if time.monotonic() > deadline or self.redis_proc.poll() is not None:
                raise RuntimeError("redis-server did not start\n" + read_log(log))
            time.sleep(0.05)

    def stop_redis(self):
        self.redis_proc.terminate()
        self.redis_proc.wait(5)
        self.redis_proc = None
        self.redis_logf.close()

    def start_router(self, allow_error_lines=False, config=None, **overrides):
        env = dict(self.env)
        env.update(overrides)
        log = self.tmp / ("router-%d.log" % (len(self.routers) + 1))
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                server_argv([self.stack.bin("session-router"), "-c", config or self.config], log),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=clean_env(env),
                cwd=str(self.tmp))
        self.routers.append([proc, log, allow_error_lines, False])
        return proc, log

    def stop_router(self):
        """Stops the latest router (its log is checked then)."""
        r = self.routers[-1]
        if not r[3]:
            self.problems += stop_process(r[0], "session-router", r[1], r[2])
            r[3] = True

    def start_frontend(self, name, allow_error_lines=False, config=None, **overrides):
        port = free_port()
        env = dict(self.env)
        env.update({"c2s_listen": "127.0.0.1:%d" % port, "frontend_name": name})
        env.update(overrides)
        log = self.tmp / ("frontend-%s.log" % name)
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                server_argv([self.stack.bin("c2s-frontend"), "-c", config or self.config], log),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=clean_env(env),
                cwd=str(self.tmp))
        self.frontends.append((proc, log, name, allow_error_lines))
        wait_port(port, READY_TIMEOUT, proc, log)
        return port, log

    def ctl(self, *args, env=None, config=None):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(
            [str(self.stack.bin("xmppctl")), "-c", str(config or self.config)] + [str(a) for a in args],
            capture_output=True, text=True, env=clean_env(e), timeout=30,
            stdin=subprocess.DEVNULL, cwd=str(self.tmp))

    def new_user(self, env=None):
        user = User(unique_name("s"), "pw-" + uuid.uuid4().hex[:12])
        r = self.ctl("adduser", user.jid, user.password, env=env)
        assert r.returncode == 0, r.stderr
        return user

    def try_login(self, port, user, timeout=3.0):
        """'success', a SASL failure condition, or an exception's repr."""
        c = XMPPClient(port, cafile=self.stack.cafile, timeout=timeout)
        try:
            c.open_stream()
            c.starttls()
            return c.auth_scram(user.localpart, user.password)
        except Exception as e:  # noqa: BLE001
            return repr(e)
        finally:
            c.close()

    def wait_login(self, port, user, want="success", timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.try_login(port, user)
            if last == want:
                return
            time.sleep(0.2)
        raise AssertionError("login on port %d: wanted %s, still %s after %.0fs"
                             % (port, want, last, timeout))

    def stop(self):
        for proc, log, name, allow in self.frontends:
            self.problems += stop_process(proc, "c2s-frontend " + name, log, allow)
        for r in self.routers:
            if not r[3]:
                self.problems += stop_process(r[0], "session-router", r[1], r[2])
                r[3] = True
        if self.redis_proc is not None:
            self.redis_proc.terminate()
            try:
                self.redis_proc.wait(5)
            except subprocess.TimeoutExpired:
                self.redis_proc.kill()
                self.redis_proc.wait(5)
            self.redis_logf.close()
        return self.problems


def wait_log(path, pattern, timeout=READY_TIMEOUT):
    """Waits until the file matches the regex; returns the match."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, read_log(path), re.M)
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError("no line matching %r in %s:\n%s"
                                 % (pattern, path, read_log(path)[-4000:]))
        time.sleep(0.1)


def expect_refused_start(stack, binary, config, env, key, timeout=10):
    """Runs a server that must refuse to start; asserts it exits non-zero naming `key`."""
    r = subprocess.run([str(stack.bin(binary)), "-c", str(config)], capture_output=True,
                       text=True, env=clean_env(env), timeout=timeout, stdin=subprocess.DEVNULL)
    assert r.returncode != 0, "%s started although %s is wrong:\n%s" % (binary, key, r.stderr)
    assert key in r.stderr, "%s's message does not name %s:\n%s" % (binary, key, r.stderr)
    return r.stderr


@pytest.fixture
def secure(stack):
    """secure(extra_config="") -> a SecureStack (own Redis, router, frontends), stopped and
    checked at the end of the test."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own Redis, router and frontends")
    made = []

    def make(extra_config=""):
        s = SecureStack(stack, extra_config)
        made.append(s)
        return s
    yield make
    problems = []
    for s in made:
        problems += s.stop()
    assert not problems, "\n".join(problems)

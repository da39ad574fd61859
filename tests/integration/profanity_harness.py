"""Drives the Profanity console client (Debian's `profanity`) in a tmux session of its own:
start it with its own HOME and XDG directories and an account file pointing at a test
frontend, type commands with `tmux send-keys`, read the screen with `tmux capture-pane` and
wait for text with a deadline (polling; a generous timeout fails the test, nothing bounds
how fast the server must be). Used by test_interop_profanity.py; holds no tests itself.

Each Profanity runs at DEBUG log level: its log (`log_text()`) holds every stanza it sent
and received, which the tests read to check what went over the wire.
"""

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

WAIT = 30.0          # default bound of one wait for text on the screen


def available():
    """None when profanity and tmux are installed, else why not."""
    missing = [p for p in ("profanity", "tmux") if shutil.which(p) is None]
    if missing:
        return "%s not installed (apt-get install %s; tools/install-deps.sh)" % (
            " and ".join(missing), " ".join(missing))
    return None


class Tmux:
    """A tmux server of our own (its own socket name), killed as a whole at the end."""

    def __init__(self):
        self.socket = "xmpp-itest-%s" % uuid.uuid4().hex[:10]

    def run(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.socket] + [str(a) for a in args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              check=check, timeout=15)

    def kill(self):
        self.run("kill-server", check=False)


class Profanity:
    """One Profanity process logged in (tls.policy trust: the test certificate is
    self-signed) as `user` with `resource`, on host:port."""

    def __init__(self, tmux, home, user, resource, port, name=None, host="127.0.0.1"):
        self.tmux = tmux
        self.home = Path(home)
        self.user = user
        self.resource = resource
        self.port = port
        self.host = host
        self.name = name or "%s-%s" % (user.localpart, resource)
        self.jid = "%s/%s" % (user.jid, resource)

    # ---------------------------------------------------------------- process
    def start(self, timeout=WAIT):
        data = self.home / "data" / "profanity"
        config = self.home / "config" / "profanity"
        data.mkdir(parents=True, exist_ok=True)
        config.mkdir(parents=True, exist_ok=True)
        # The account, as `/account add` + `/account set` would write it.
        (data / "accounts").write_text(
            "[%s]\nenabled=true\njid=%s\nserver=%s\nport=%d\nresource=%s\n"
            "password=%s\ntls.policy=trust\n"
            % (self.user.jid, self.user.jid, self.host, self.port, self.resource,
               self.user.password))
        env = " ".join("%s=%s" % kv for kv in (
            ("HOME", self.home), ("XDG_CONFIG_HOME", self.home / "config"),
            ("XDG_DATA_HOME", self.home / "data"), ("LANG", "C.UTF-8")))
        cmd = "env %s profanity -l DEBUG -a %s" % (env, self.user.jid)
        self.tmux.run("new-session", "-d", "-s", self.name, "-x", 200, "-y", 50, cmd)
        self.wait_for("%s logged in successfully" % self.jid, timeout, what="login")
        # What the server offers (disco#info of the domain) arrives after the login line;
        # Profanity decides on it whether it may query the archive or publish with
        # publish-options, so nothing is typed before it is in.
        self.wait_log(r'RECV: <iq (?=[^>]*type="result")(?=[^>]*from="%s")[^>]*>'
                      r'<query xmlns="http://jabber\.org/protocol/disco#info"'
                      % re.escape(self.user.jid.split("@", 1)[1]), timeout,
                      what="the server's disco#info answer")

    def alive(self):
        return self.tmux.run("has-session", "-t", self.name, check=False).returncode == 0

    def quit(self, timeout=10.0):
        if not self.alive():
            return
        self.send("/quit")
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            self.tmux.run("kill-session", "-t", self.name, check=False)

    # ---------------------------------------------------------------- keyboard
    def send(self, line):
        """Types `line` and Enter."""
        self.tmux.run("send-keys", "-t", self.name, "-l", line)
        self.tmux.run("send-keys", "-t", self.name, "Enter")

    def window(self, n):
        self.send("/win %d" % n)

    # ---------------------------------------------------------------- screen
    def screen(self):
        return self.tmux.run("capture-pane", "-p", "-J", "-t", self.name).stdout

    def log_text(self):
        p = self.home / "data" / "profanity" / "logs" / "profanity.log"
        try:
            return p.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for(self, pattern, timeout=WAIT, what=None):
        """Polls the screen until `pattern` (a regex, or plain text) shows; returns the
        match. Fails with the last screen and the end of Profanity's log."""
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        text = ""
        while True:
            if self.alive():
                text = self.screen()
                m = rx.search(text)
                if m:
                    return m
            elif time.monotonic() < deadline:
                raise AssertionError("%s: profanity exited while waiting for %s (%r)\n"
                                     "---- its log ----\n%s"
                                     % (self.name, what or "text", rx.pattern,
                                        self.log_text()[-6000:]))
            if time.monotonic() > deadline:
                raise AssertionError(
                    "%s: no %s (%r) on the screen within %.0fs\n---- screen ----\n%s\n"
                    "---- end of its log ----\n%s"
                    % (self.name, what or "text", rx.pattern, timeout, text,
                       self.log_text()[-6000:]))
            time.sleep(0.2)

    def wait_log(self, pattern, timeout=WAIT, what=None):
        """Polls Profanity's log until the regex `pattern` matches; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("%s: no %s (%r) in its log within %.0fs\n---- end of "
                                     "log ----\n%s" % (self.name, what or "line", pattern,
                                                        timeout, self.log_text()[-6000:]))
            time.sleep(0.2)

    def received(self):
        """The stanzas Profanity logged as received (its DEBUG log's RECV lines)."""
        return re.findall(r"DBG: RECV: (.*)", self.log_text())

    def sent(self):
        return re.findall(r"DBG: SENT: (.*)", self.log_text())


def new_home(base, tag):
    d = Path(base) / ("prof-%s" % tag)
    d.mkdir(parents=True, exist_ok=False)
    os.chmod(d, 0o700)
    return d


def starter(stack, tmp_path):
    """Generator behind the `profanity` fixtures: yields start(user, resource, port=None)
    -> a started Profanity logged in to the stack's main frontend (or `port`); all quit
    (and their tmux server killed) when the generator is closed."""
    host = getattr(stack, "host", "127.0.0.1")      # a running stack (XMPP_HOST) too
    tmux = Tmux()
    started = []

    def start(user, resource, port=None):
        p = Profanity(tmux, new_home(tmp_path, "%s-%s" % (user.localpart, resource)),
                      user, resource, port or stack.port, host=host)
        started.append(p)
        p.start()
        return p
    try:
        yield start
    finally:
        for p in started:
            try:
                p.quit()
            except Exception:  # noqa: BLE001 - the tmux server goes anyway
                pass
        tmux.kill()

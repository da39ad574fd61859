"""A real federation peer for the server-to-server tests: a private Prosody (Debian's
`prosody` package, 0.12) started by the test from a directory of its own, plus what it needs
to federate on loopback without real DNS or real certificates. Used by
test_s2s_prosody.py; holds no tests itself.

- TestCA: a certificate authority made with the openssl command line; issue(domain) gives a
  certificate (dNSName = the domain, serverAuth and clientAuth) and key signed by it. A
  second TestCA nobody trusts makes certificates that do not verify (dialback).
- FakeDNS: a small authoritative DNS server on a UDP loopback port, answering the records
  the test sets (SRV `_xmpp-server._tcp.DOMAIN` or `_xmpps-server._tcp.DOMAIN` -> a loopback
  port, A records) and NXDOMAIN for every other name; it records the questions asked. Any
  resolver that takes a server address and port can use it (our frontend's
  `s2s_dns_servers`; c-ares answers the same as libunbound).
- ProsodyPeer: one Prosody process (its own config, domain, data directory, log, c2s and
  s2s ports on 127.0.0.1) that authenticates servers by certificate (SASL EXTERNAL,
  XEP-0178; `s2s_secure_auth = true`, no mod_dialback) or by Server Dialback (XEP-0220;
  `s2s_secure_auth = false`, mod_dialback), optionally also on a XEP-0368 direct TLS port.
  Accounts are made with prosodyctl against its config. Its log says how each s2s stream
  was authenticated (`s2s_authentications()`: direction, remote domain, mechanism, the
  certificate's chain and identity status, the port; from a tiny probe module written next
  to the config). Scenario helpers for raw clients (befriend, chat, presence) end the file.

How Prosody reaches a domain on a loopback port: Prosody 0.12 resolves s2s targets with
net.adns, which is libunbound (net.unbound) when the lua-unbound package is installed (Debian
recommends it; without it Prosody falls back to its own resolver that reads /etc/resolv.conf
and asks port 53 only). The config's `unbound` table is handed to libunbound, so

    unbound = { resolvconf = false; hoststxt = false; forward = "127.0.0.1@PORT" }

sends every question to FakeDNS and nothing to the system's resolvers or the root servers.
libunbound answers some reserved names itself before any forwarder (its default local zones:
test., localhost., invalid., onion., home.arpa. and reverse zones), and those zones cannot be
switched off through lua-unbound's options: the domains federating through FakeDNS must lie
outside them, e.g. `ours.example` (RFC 2606 reserves .example and no resolver answers it
locally). A domain of ours is reached by `dns.xmpp_server(domain, port)`.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections import namedtuple
from pathlib import Path

from conftest import READY_TIMEOUT, free_port, read_log, unique_name, wait_port
from xmpp_client import NS_CLIENT, NS_STANZAS, PRESENCE_TAG, XMPPClient, dump, local, q

PROSODY = "/usr/bin/prosody"
PROSODYCTL = "/usr/bin/prosodyctl"
# Names libunbound answers from its built-in local zones, never asking a forwarder.
UNBOUND_LOCAL_ZONES = ("test", "localhost", "invalid", "onion", "arpa")
STOP_TIMEOUT = 10.0

_available = []


def available():
    """None when the harness can run here, else the reason (for pytest.skip)."""
    if _available:
        return _available[0]
    reason = None
    if not os.access(PROSODY, os.X_OK) or not os.access(PROSODYCTL, os.X_OK):
        reason = "prosody not installed (apt-get install prosody; tools/install-deps.sh)"
    elif shutil.which("openssl") is None:
        reason = "openssl command not installed"
    else:
        # Prosody runs on lua5.4 (its #! line); without lua-unbound it would resolve through
        # /etc/resolv.conf on port 53 and never reach FakeDNS.
        lua = "lua5.4"
        try:
            first = Path(PROSODY).read_text(errors="replace").splitlines()[0]
            m = re.search(r"(lua[0-9.]*)\s*$", first)
            if m:
                lua = m.group(1)
        except (OSError, IndexError):
            pass
        try:
            r = subprocess.run([lua, "-e", "require 'lunbound'"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                reason = ("lua-unbound not installed for %s (apt-get install lua-unbound; "
                          "tools/install-deps.sh): Prosody could not be pointed at the test's "
                          "DNS server" % lua)
        except (OSError, subprocess.TimeoutExpired) as e:
            reason = "cannot run %s: %s" % (lua, e)
    _available.append(reason)
    return reason


def check_domain(domain):
    """Raises ValueError for a domain FakeDNS could not serve to Prosody's libunbound."""
    labels = domain.lower().rstrip(".").split(".")
    if labels[-1] in UNBOUND_LOCAL_ZONES:
        raise ValueError("%s: libunbound answers .%s itself (a default local zone) and never "
                         "asks FakeDNS; use a domain such as ours.example" % (domain, labels[-1]))
    return domain


# ------------------------------------------------------------------ certificates
def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + [str(a) for a in args], cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (args[0], r.returncode, r.stderr))
    return r


class Cert:
    """A certificate and key issued by `ca` (whose file is `ca.cafile`) for `names`."""

    def __init__(self, certfile, keyfile, ca, names):
        self.certfile = str(certfile)
        self.keyfile = str(keyfile)
        self.ca = ca
        self.names = list(names)

    @property
    def cafile(self):
        return self.ca.cafile

    def __repr__(self):
        return "Cert(%s by %s)" % (",".join(self.names), self.ca.name)


class TestCA:
    """A self-signed CA (EC P-256, valid two days) in `directory`; issue() signs leaf
    certificates with it. Not a pytest test class despite the name."""

    __test__ = False

    def __init__(self, directory, name="xmpp-itest CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.keyfile = str(self.dir / "ca.key")
        self.cafile = str(self.dir / "ca.pem")
        self._serial = int.from_bytes(os.urandom(6), "big")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", self.keyfile, "-out", self.cafile, "-days", "2",
                 "-subj", "/O=xmpp integration tests/CN=%s" % name,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, domain, extra_names=()):
        """Certificate for `domain` (and extra_names, e.g. '*.DOMAIN'): subjectAltName
        dNSName entries, extendedKeyUsage serverAuth and clientAuth (an s2s certificate is
        shown in both roles). Returns a Cert."""
        names = [domain] + list(extra_names)
        stem = self.dir / domain.replace("*", "_")
        key, csr, crt, ext = (str(stem) + s for s in (".key", ".csr", ".crt", ".ext"))
        Path(ext).write_text(
            "basicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = serverAuth,clientAuth\n"
            "subjectAltName = %s\n" % ",".join("DNS:%s" % n for n in names))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % domain)
        self._serial += 1
        _openssl("x509", "-req", "-in", csr, "-CA", self.cafile, "-CAkey", self.keyfile,
                 "-set_serial", str(self._serial), "-days", "2", "-sha256",
                 "-extfile", ext, "-out", crt)
        os.chmod(key, 0o600)
        return Cert(crt, key, self, names)


# ------------------------------------------------------------------ DNS
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "DS": 43, "DNSKEY": 48, "TLSA": 52, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}


def _wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna")
        if not 0 < len(raw) < 64:
            raise ValueError("bad DNS label in %r" % name)
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def _question(packet):
    """(lowercased name, qtype, end offset of the question) of a query; ValueError when
    it is not a query this server answers (no compression in questions)."""
    if len(packet) < 12:
        raise ValueError("short packet")
    flags, qdcount = struct.unpack("!HH", packet[2:6])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qdcount != 1:
        raise ValueError("not a standard query with one question")
    pos, labels = 12, []
    while True:
        n = packet[pos]
        pos += 1
        if n == 0:
            break
        if n >= 64:
            raise ValueError("compressed or bad label")
        labels.append(packet[pos:pos + n].decode("ascii", "replace").lower())
        pos += n
    if pos + 4 > len(packet):
        raise ValueError("short question")
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    if qclass != 1:
        raise ValueError("class %d" % qclass)
    return ".".join(labels), qtype, pos + 4


class FakeDNS:
    """An authoritative DNS server on 127.0.0.1:<port> (UDP) in a thread: the records added
    here, NODATA for other types of a known name, NXDOMAIN for unknown names. `queries`
    lists (name, type name) in the order asked. close() stops it."""

    def __init__(self, ttl=5):
        self.ttl = ttl
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.records = {}            # name -> {qtype: [rdata bytes]}
        self.queries = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)
        self.thread.start()

    @property
    def forward(self):
        """The address as libunbound's `forward` option spells it."""
        return "127.0.0.1@%d" % self.port

    def add(self, name, rtype, value):
        """rtype 'A' (value '127.0.0.1'), 'AAAA' ('::1') or 'SRV' (value (priority, weight,
        port, target))."""
        if rtype == "A":
            rdata = socket.inet_pton(socket.AF_INET, value)
        elif rtype == "AAAA":
            rdata = socket.inet_pton(socket.AF_INET6, value)
        elif rtype == "SRV":
            prio, weight, port, target = value
            rdata = struct.pack("!HHH", prio, weight, port) + _wire_name(target)
        else:
            raise ValueError("record type %s not supported" % rtype)
        key = name.lower().rstrip(".")
        with self.lock:
            self.records.setdefault(key, {}).setdefault(TYPES[rtype], []).append(rdata)

    def remove(self, name, rtype=None):
        """Drops the records of `name` (of one type, or all)."""
        key = name.lower().rstrip(".")
        with self.lock:
            if rtype is None:
                self.records.pop(key, None)
            elif key in self.records:
                self.records[key].pop(TYPES[rtype], None)

    def xmpp_server(self, domain, port, host="127.0.0.1", service="xmpp-server", target=None):
        """Points `domain`'s s2s service at host:port, replacing what was there: SRV
        _SERVICE._tcp.DOMAIN -> TARGET port PORT and TARGET's A record -> host; TARGET is
        the domain itself unless given (a name of its own keeps the domain without an
        address: nothing reaches it on 5269 when the SRV record is not used). service
        'xmpps-server': XEP-0368 direct TLS. libunbound may keep an old answer for the
        records' TTL: give each server a domain of its own rather than moving one."""
        check_domain(domain)
        target = target or domain
        srv = "_%s._tcp.%s" % (service, domain)
        self.remove(srv, "SRV")
        self.add(srv, "SRV", (0, 0, port, target))
        self.remove(target, "A")
        self.add(target, "A", host)

    def asked(self, name, rtype):
        with self.lock:
            return (name.lower().rstrip("."), rtype) in self.queries

    def _answer(self, packet):
        name, qtype, end = _question(packet)
        with self.lock:
            self.queries.append((name, TYPE_NAMES.get(qtype, str(qtype))))
            known = self.records.get(name)
            answers = list((known or {}).get(qtype, ()))
        rd = struct.unpack("!H", packet[2:4])[0] & 0x0100
        # QR, AA, RD copied, RA; NXDOMAIN (3) for a name we do not know.
        flags = 0x8000 | 0x0400 | rd | 0x0080 | (0 if known is not None else 3)
        out = packet[:2] + struct.pack("!HHHHH", flags, 1, len(answers), 0, 0) + packet[12:end]
        for rdata in answers:
            # The owner name is a pointer to the question's name (offset 12).
            out += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, self.ttl, len(rdata)) + rdata
        return out

    def _serve(self):
        while not self.closed:
            try:
                packet, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                reply = self._answer(packet)
            except (ValueError, IndexError, struct.error):
                continue          # not a query we answer: dropped
            try:
                self.sock.sendto(reply, addr)
            except OSError:
                pass

    def close(self):
        self.closed = True
        try:
            # Wakes the thread out of recvfrom.
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"", ("127.0.0.1", self.port))
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()


# ------------------------------------------------------------------ Prosody
# A Prosody module the harness loads: one log line per authenticated s2s stream, in a form
# the tests parse (Prosody's own wording differs per mechanism and release).
PROBE_MODULE = """\
-- Written by tests/integration/prosody_peer.py for the integration tests.
-- port: the server side's port of the TCP connection (ours when incoming, the peer's when
-- outgoing).
module:hook("s2s-authenticated", function (event)
    local session = event.session;
    local conn = session.conn;
    local port = conn and conn.serverport and conn:serverport();
    module:log("info", "itest-s2s-authenticated direction=%s remote=%s mechanism=%s "
        .. "chain=%s identity=%s port=%s",
        tostring(session.direction), tostring(event.host), tostring(event.mechanism),
        tostring(session.cert_chain_status), tostring(session.cert_identity_status),
        tostring(port));
end, 1000);
"""

AUTH_LINE = re.compile(r"itest-s2s-authenticated direction=(\S+) remote=(\S+) mechanism=(\S+) "
                       r"chain=(\S+) identity=(\S+) port=(\S+)")
# One authenticated s2s stream as the probe logged it: direction 'incoming'/'outgoing',
# the remote domain, mechanism 'EXTERNAL'/'dialback', the peer certificate's chain status
# and identity status ('valid', 'invalid', 'nil'), the server side's port.
Auth = namedtuple("Auth", "direction remote mechanism chain identity port")


def lua_str(s):
    """A Lua string literal."""
    return '"%s"' % str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PeerUser:
    def __init__(self, localpart, domain, password):
        self.localpart = localpart
        self.domain = domain
        self.password = password
        self.jid = "%s@%s" % (localpart, domain)

    def __repr__(self):
        return "PeerUser(%s)" % self.jid


class ProsodyPeer:
    """A private Prosody serving `domain` from `workdir` (config, data, log all inside).

    auth: 'certificate' (s2s_secure_auth = true, no dialback: peers authenticate by SASL
    EXTERNAL with a certificate that verifies against `trust`) or 'dialback'
    (s2s_secure_auth = false, mod_dialback). cert: its Cert (shown on c2s and s2s). trust:
    the CA file(s) its s2s side trusts (one path or a list; only these, not the system
    store). dns: the FakeDNS it resolves every domain with. direct_tls: it also listens for
    XEP-0368 direct TLS s2s on s2s_tls_port. extra_config: Lua lines added to the global
    section; modules: more modules to enable."""

    running = []      # the started ones (for the log dump of a failed test)

    def __init__(self, workdir, domain, cert, trust, dns, auth="certificate", extra_config="",
                 modules=(), direct_tls=False):
        if auth not in ("certificate", "dialback"):
            raise ValueError(auth)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.domain = check_domain(domain)
        self.cert = cert
        self.trust = [trust] if isinstance(trust, (str, Path)) else list(trust)
        self.dns = dns
        self.auth = auth
        self.extra_config = extra_config
        self.modules = list(modules)
        self.data = self.dir / "data"
        self.config = self.dir / "prosody.cfg.lua"
        self.log = self.dir / "prosody.log"
        self.errlog = self.dir / "prosody.err"       # its error-level lines alone
        self.console = self.dir / "prosody.stdout"
        self.c2s_port = free_port()
        self.s2s_port = free_port()
        self.s2s_tls_port = free_port() if direct_tls else None
        self.proc = None
        self._console = None
        self._write_config()

    # -------------------------------------------------------------- config
    def _write_config(self):
        self.data.mkdir(exist_ok=True)
        os.chmod(self.data, 0o700)
        # The host's certificate also where Prosody looks by name: the contexts of its
        # direct TLS ports (chosen by SNI) come from there, not from the host's `ssl`.
        certs = self.dir / "certs"
        certs.mkdir(exist_ok=True)
        shutil.copyfile(self.cert.certfile, certs / (self.domain + ".crt"))
        shutil.copyfile(self.cert.keyfile, certs / (self.domain + ".key"))
        os.chmod(certs / (self.domain + ".key"), 0o600)
        plugins = self.dir / "plugins"
        plugins.mkdir(exist_ok=True)
        (plugins / "mod_itest_probe.lua").write_text(PROBE_MODULE)
        # An empty CA directory: only the files in `trust` are trusted (Prosody's default
        # capath is the system store, /etc/ssl/certs).
        capath = self.dir / "capath"
        capath.mkdir(exist_ok=True)
        cafile = self.dir / "trusted.pem"
        cafile.write_text("".join(Path(p).read_text() for p in self.trust))
        modules = ["roster", "saslauth", "tls", "disco", "ping", "itest_probe"]
        if self.auth == "dialback":
            modules.append("dialback")
        modules += self.modules
        self.config.write_text("""\
-- Written by tests/integration/prosody_peer.py: a private Prosody for one test module.
run_as_root = true             -- tests may run as root (containers); no user switch
pidfile = {pidfile}
certificates = {certs}
data_path = {data}
plugin_paths = {{ {plugins} }}
log = {{ debug = {log}; error = {errlog} }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
s2s_ports = {{ {s2s} }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ {s2s_tls} }}
network_backend = "epoll"
use_ipv6 = false
modules_enabled = {{ {modules} }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = {secure}
s2s_timeout = 15
-- At shutdown it waits this long for each stream's peer to close (default 5 s).
c2s_close_timeout = 1
s2s_close_timeout = 1
-- Every DNS question goes to the test's DNS server (libunbound through lua-unbound).
unbound = {{ resolvconf = false; hoststxt = false; forward = {forward} }}
ssl = {{ cafile = {cafile}; capath = {capath} }}
{extra}
VirtualHost {domain}
    ssl = {{ certificate = {certfile}; key = {keyfile}; cafile = {cafile}; capath = {capath} }}
""".format(pidfile=lua_str(self.dir / "prosody.pid"), data=lua_str(self.data),
           certs=lua_str(certs), plugins=lua_str(plugins), log=lua_str(self.log),
           errlog=lua_str(self.errlog),
           c2s=self.c2s_port, s2s=self.s2s_port, s2s_tls=self.s2s_tls_port or "",
           modules=", ".join(lua_str(m) for m in modules),
           secure="true" if self.auth == "certificate" else "false",
           forward=lua_str(self.dns.forward), cafile=lua_str(cafile), capath=lua_str(capath),
           extra=self.extra_config, domain=lua_str(self.domain),
           certfile=lua_str(self.cert.certfile), keyfile=lua_str(self.cert.keyfile)))

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XMPP_", "PROSODY"))}
        env["HOME"] = str(self.data)
        return env

    # -------------------------------------------------------------- process
    def start(self, timeout=READY_TIMEOUT):
        """Starts Prosody in the foreground and waits until its c2s and s2s ports accept."""
        ProsodyPeer.running.append(self)
        self._console = open(self.console, "ab")
        self.proc = subprocess.Popen(
            [PROSODY, "--config", str(self.config), "-F"], cwd=str(self.dir), env=self.env(),
            stdin=subprocess.DEVNULL, stdout=self._console, stderr=subprocess.STDOUT)
        try:
            for port in (self.c2s_port, self.s2s_port, self.s2s_tls_port):
                if port is None:
                    continue
                wait_port(port, timeout, self.proc, self.console)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError("%s\n%s" % (e, self.dump_log()))
        return self

    def stop(self, allow_error_lines=False):
        """SIGTERM and wait; returns a list of problems (empty when it exited 0 and logged
        no error-level line, unless allow_error_lines)."""
        problems = []
        if self in ProsodyPeer.running:
            ProsodyPeer.running.remove(self)
        if self.proc is not None:
            if self.proc.poll() is not None:
                problems.append("prosody %s had exited with status %s before shutdown"
                                % (self.domain, self.proc.returncode))
            else:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
                    problems.append("prosody %s did not exit within %.0fs of SIGTERM"
                                    % (self.domain, STOP_TIMEOUT))
                else:
                    if self.proc.returncode != 0:
                        problems.append("prosody %s exited with status %s"
                                        % (self.domain, self.proc.returncode))
            self.proc = None
        if self._console is not None:
            self._console.close()
            self._console = None
        errors = read_log(self.errlog).strip()
        if errors and not allow_error_lines:
            problems.append("prosody %s logged error-level lines: %s"
                            % (self.domain, errors.splitlines()[0]))
        if problems:
            problems.append(self.dump_log())
        return problems

    def log_text(self):
        return read_log(self.log)

    def log_size(self):
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def dump_log(self, since=0, limit=20000):
        """The log (from byte offset `since`) and the console output, for a failure report."""
        with open(self.log, "rb") if self.log.exists() else open(os.devnull, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        out = "---- prosody %s log (%s) ----\n%s" % (self.domain, self.log, text[-limit:])
        console = read_log(self.console)
        if console.strip():
            out += "\n---- prosody %s console (%s) ----\n%s" % (self.domain, self.console,
                                                             console[-limit:])
        return out

    # -------------------------------------------------------------- accounts and clients
    def register(self, localpart, password):
        """An account made with prosodyctl against this config."""
        r = subprocess.run([PROSODYCTL, "--config", str(self.config), "register", localpart,
                            self.domain, password], cwd=str(self.dir), env=self.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("prosodyctl register %s@%s failed (%d): %s%s"
                               % (localpart, self.domain, r.returncode, r.stdout, r.stderr))
        return PeerUser(localpart, self.domain, password)

    def new_user(self, prefix="pu"):
        return self.register(unique_name(prefix), "pw-" + uuid.uuid4().hex[:16])

    def client(self, timeout=5.0):
        """A raw XMPPClient to its c2s port, checking its certificate for the domain."""
        return XMPPClient(self.c2s_port, domain=self.domain, cafile=self.cert.cafile,
                          timeout=timeout)

    def login(self, user, resource="itest", timeout=5.0):
        """A client logged in as `user` (STARTTLS, SCRAM-SHA-1: Prosody 0.12 stores SHA-1
        SCRAM credentials), bound to `resource`, not yet available."""
        c = self.client(timeout)
        try:
            c.login(user.localpart, user.password, mech="SCRAM-SHA-1", resource=resource)
        except BaseException:
            c.close()
            raise
        return c

    # -------------------------------------------------------------- what its log says
    def s2s_authentications(self, since=0):
        """[Auth] for each s2s stream authenticated (from log offset `since`)."""
        with open(self.log, "rb") if self.log.exists() else open(os.devnull, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        return [Auth(*m) for m in AUTH_LINE.findall(text)]

    def wait_authenticated(self, remote, direction, timeout=READY_TIMEOUT):
        """The Auth of the first s2s stream with `remote` in `direction` ('incoming',
        'outgoing') authenticated; AssertionError (with the log) if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            for a in self.s2s_authentications():
                if a.direction == direction and a.remote == remote:
                    return a
            gone = self.proc is not None and self.proc.poll() is not None
            if time.monotonic() > deadline or gone:
                raise AssertionError("prosody %s: no %s s2s stream with %s authenticated\n%s"
                                     % (self.domain, direction, remote, self.dump_log()))
            time.sleep(0.05)


# ------------------------------------------------------------------ what the users do
# Scenario steps on raw XMPPClients (xmpp_client.py's im_* helpers, which keep whatever
# arrives early for later waits), shared by the federation tests whatever the servers.
WAIT = 15.0   # bound of one wait for something that crosses servers


def bare(jid):
    return jid.split("/", 1)[0]


def go_online(c, show=None, status=None, timeout=WAIT):
    """Roster get (the resource becomes an interested one) and initial presence."""
    res = c.roster_get(timeout=timeout)
    assert res.get("type") == "result", "roster get failed: %s" % dump(res)
    c.im_presence(show=show, status=status)


def befriend(a, b, timeout=WAIT):
    """`a` adds `b` (roster set, presence subscribe), b approves and asks back, a approves
    (RFC 6121 section 3.1, both ways). a and b are online clients (go_online) whose .jid is
    the full JID. Returns once each has seen the other's available presence and holds a
    roster item with subscription 'both' for the other."""
    ja, jb = bare(a.jid), bare(b.jid)
    res = a.roster_set(jb, name="contact", timeout=timeout)
    assert res.get("type") == "result", "roster set failed: %s" % dump(res)
    a.im_presence(to=jb, type_="subscribe")
    b.im_wait_presence(sender=ja, type_="subscribe", timeout=timeout)
    b.im_presence(to=ja, type_="subscribed")
    b.im_presence(to=ja, type_="subscribe")
    a.im_wait_presence(sender=jb, type_="subscribed", timeout=timeout)
    a.im_wait_presence(sender=jb, type_="subscribe", timeout=timeout)
    a.im_presence(to=jb, type_="subscribed")
    a.im_wait_presence(sender=b.jid, timeout=timeout)
    b.im_wait_presence(sender=a.jid, timeout=timeout)
    for c, other in ((a, jb), (b, ja)):
        items = c.roster(timeout=timeout)
        assert other in items, "%s: %s not in the roster %r" % (c.jid, other, items)
        assert items[other]["subscription"] == "both" and items[other]["ask"] is None, (
            "%s: roster item of %s is %r, expected subscription both" % (c.jid, other,
                                                                         items[other]))


def chat(a, b, body, timeout=WAIT):
    """a sends b a chat message (to b's full JID); b receives it from a's full JID with the
    body unchanged. Returns the received element."""
    mid = a.message(b.jid, body)
    m = b.im_wait_message(body, sender=a.jid, timeout=timeout)
    assert m.get("type") == "chat", dump(m)
    assert m.get("id") == mid, "message id changed in transit: %s" % dump(m)
    assert bare(m.get("to") or b.jid) == bare(b.jid), dump(m)
    return m


def wait_show(c, sender, show, status=None, timeout=WAIT):
    """The next available presence from `sender` (full JID) with <show/> `show` (and
    <status/> `status` when given)."""
    def pred(e):
        if e.tag != PRESENCE_TAG or e.get("type") is not None or e.get("from") != sender:
            return False
        if e.findtext(q(NS_CLIENT, "show")) != show:
            return False
        return status is None or e.findtext(q(NS_CLIENT, "status")) == status
    return c.im_wait(pred, timeout, "presence show=%s from %s" % (show, sender))


def presence_both_ways(a, b, timeout=WAIT):
    """b turns away (with a status) and a sees it; a turns dnd and b sees it; a goes
    unavailable and b sees that."""
    status = "itest " + uuid.uuid4().hex[:8]
    b.im_presence(show="away", status=status)
    wait_show(a, b.jid, "away", status, timeout)
    a.im_presence(show="dnd", status=status)
    wait_show(b, a.jid, "dnd", status, timeout)
    a.im_presence(type_="unavailable")
    b.im_wait_presence(sender=a.jid, type_="unavailable", timeout=timeout)


def wait_error(c, sender, timeout=WAIT):
    """The next message of type error from `sender`; returns (element, condition)."""
    m = c.im_wait_message(sender=sender, type_="error", timeout=timeout)
    err = m.find(q(NS_CLIENT, "error"))
    assert err is not None, "error message without <error/>: %s" % dump(m)
    conds = [local(ch.tag) for ch in err if ch.tag.startswith("{%s}" % NS_STANZAS)
             and local(ch.tag) != "text"]
    return m, conds[0] if conds else None

"""SCRAM-SHA-1-PLUS and SCRAM-SHA-256-PLUS: SCRAM with channel binding (RFC 5802 section 6)
over real TLS 1.3 and 1.2, with the types tls-exporter (RFC 9266) and tls-server-end-point
(RFC 5929 section 4.1), advertised per XEP-0440.

The test client does its TLS with pyOpenSSL (Debian's python3-openssl), because Python's
ssl module cannot export keying material. It computes both binding types itself from its
side of the connection: tls-exporter with SSL_export_keying_material("EXPORTER-Channel-
Binding", 32 bytes, no context), tls-server-end-point as the hash of the certificate the
server sent (SHA-256 for an MD5 or SHA-1 signature, else the signature's hash, read with
the cryptography package).
"""

import base64
import hashlib
import select
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from OpenSSL import SSL, crypto

from conftest import READY_TIMEOUT, Frontend, free_port, wait_port, wait_probe_login
from xmpp_client import NS_SASL, NS_TLS, ScramClient, XMPPClient, b64, dump, q

NS_SASL_CB = "urn:xmpp:sasl-cb:0"
EXPORTER_LABEL = b"EXPORTER-Channel-Binding"
TYPES = ("tls-exporter", "tls-server-end-point")
PLUS_MECHS = [("SCRAM-SHA-256-PLUS", "SHA-256"), ("SCRAM-SHA-1-PLUS", "SHA-1")]
VERSIONS = {"1.3": SSL.TLS1_3_VERSION, "1.2": SSL.TLS1_2_VERSION}
VERSION_NAMES = {"1.3": "TLSv1.3", "1.2": "TLSv1.2"}
# OpenSSL 3's SSL_OP_NO_EXTENDED_MASTER_SECRET (ssl.h: SSL_OP_BIT(0)); pyOpenSSL has no name
# for it.
OP_NO_EXTENDED_MASTER_SECRET = 1 << 0

# The extra frontends here are connected to many times from one address.
NO_IP_LIMITS = {"connection_rate_per_ip": "0", "max_connections_per_ip": "0",
                "auth_failures_per_ip": "0"}


# ------------------------------------------------------------------ TLS with pyOpenSSL
class PyOpenSSLSocket:
    """Just enough of a socket for XMPPClient (recv, sendall, settimeout, shutdown, close)
    over a pyOpenSSL connection on a non-blocking socket."""

    def __init__(self, conn, raw, timeout):
        self.conn = conn
        self.raw = raw
        self.timeout = timeout

    def settimeout(self, t):
        self.timeout = t

    def _wait(self, want_write, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        r, w, _ = select.select([] if want_write else [self.raw], [self.raw] if want_write else [],
                                [], remaining)
        if not r and not w:
            raise socket.timeout("timed out")

    def recv(self, n):
        deadline = time.monotonic() + (self.timeout or 3600)
        while True:
            try:
                return self.conn.recv(n)
            except SSL.WantReadError:
                self._wait(False, deadline)
            except SSL.WantWriteError:
                self._wait(True, deadline)
            except SSL.ZeroReturnError:
                return b""
            except SSL.SysCallError as e:
                if e.args and e.args[0] in (-1, 0):   # EOF without close_notify
                    return b""
                raise ConnectionResetError(str(e)) from None

    def sendall(self, data):
        deadline = time.monotonic() + (self.timeout or 3600)
        view = memoryview(data)
        while view:
            try:
                n = self.conn.send(view.tobytes())
                view = view[n:]
            except SSL.WantWriteError:
                self._wait(True, deadline)
            except SSL.WantReadError:
                self._wait(False, deadline)
            except SSL.SysCallError as e:
                raise BrokenPipeError(str(e)) from None

    def shutdown(self, how):
        self.raw.shutdown(how)

    def close(self):
        self.raw.close()


def tls_context(version="1.3", cafile=None, ciphers=None, no_ems=False):
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(VERSIONS[version])
    ctx.set_max_proto_version(VERSIONS[version])
    if ciphers:
        ctx.set_cipher_list(ciphers.encode())
    if no_ems:
        ctx.set_options(OP_NO_EXTENDED_MASTER_SECRET)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: bool(ok))
    return ctx


class CBClient(XMPPClient):
    """XMPPClient whose TLS is pyOpenSSL, so it can compute channel bindings."""

    def tls_handshake(self, ctx, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        raw = self.sock
        raw.setblocking(False)
        conn = SSL.Connection(ctx, raw)
        conn.set_tlsext_host_name(self.domain.encode())
        conn.set_connect_state()
        wrapped = PyOpenSSLSocket(conn, raw, timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                wrapped._wait(False, deadline)
            except SSL.WantWriteError:
                wrapped._wait(True, deadline)
        self.conn = conn
        self.sock = wrapped
        self.tls = True

    def starttls_with(self, ctx):
        """STARTTLS with pyOpenSSL; returns the new stream features."""
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        el = self.recv()
        assert el.tag == q(NS_TLS, "proceed"), "expected <proceed/>, got %s" % dump(el)
        assert not self.parser.events, "data after <proceed/>"
        self.tls_handshake(ctx)
        return self._restart()

    def tls_version(self):
        return self.conn.get_protocol_version_name()

    def binding(self, cb_type):
        """The channel binding data of this connection, computed on the client's side."""
        if cb_type == "tls-exporter":
            return self.conn.export_keying_material(EXPORTER_LABEL, 32, None)
        if cb_type == "tls-server-end-point":
            cert = self.conn.get_peer_certificate()
            der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
            name = cert.to_cryptography().signature_hash_algorithm.name
            # RFC 5929 section 4.1: MD5 and SHA-1 are replaced by SHA-256.
            if name in ("md5", "sha1"):
                name = "sha256"
            return hashlib.new(name, der).digest()
        raise ValueError(cb_type)


def connect(stack, port=None, version="1.3", **ctx_args):
    """A CBClient on the STARTTLS port (the main frontend's, or `port` of one started here),
    after STARTTLS (certificate verified for the main frontend)."""
    # A running stack (XMPP_HOST) has a host of its own; the frontends started here are
    # on loopback.
    host = getattr(stack, "host", "127.0.0.1") if port is None else "127.0.0.1"
    c = CBClient(port or stack.port, host=host, domain=stack.domain, timeout=5.0)
    c.open_stream()
    if port is None:
        ctx_args.setdefault("cafile", stack.cafile)
    c.starttls_with(tls_context(version, **ctx_args))
    assert c.tls_version() == VERSION_NAMES[version], c.tls_version()
    return c


@pytest.fixture
def cb_clients(stack):
    made = []

    def make(port=None, version="1.3", **ctx_args):
        c = connect(stack, port, version, **ctx_args)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def advertised_types(features):
    el = features.find(q(NS_SASL_CB, "sasl-channel-binding"))
    if el is None:
        return None
    return [b.get("type") for b in el.findall(q(NS_SASL_CB, "channel-binding"))]


# ------------------------------------------------------------------ SCRAM with binding
def scram(c, user, password, mech, gs2_header, cbind_data=b"", hash_name=None):
    """One SCRAM exchange. Returns ('success', None) after checking the server signature
    (the stream is restarted), or (condition, <failure/> element)."""
    hash_name = hash_name or ("SHA-1" if mech.startswith("SCRAM-SHA-1") else "SHA-256")
    sc = ScramClient(user, password, hash_name)
    sc.gs2_header = gs2_header
    sc.cbind_data = cbind_data
    c.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mech, b64(sc.client_first())))
    el = c.recv()
    if el.tag == q(NS_SASL, "failure"):
        return c.failure_condition(el), el
    assert el.tag == q(NS_SASL, "challenge"), dump(el)
    c.send("<response xmlns='%s'>%s</response>"
           % (NS_SASL, b64(sc.client_final(base64.b64decode(el.text).decode()))))
    el = c.recv()
    if el.tag == q(NS_SASL, "failure"):
        return c.failure_condition(el), el
    assert el.tag == q(NS_SASL, "success"), dump(el)
    sc.verify_server_final(base64.b64decode(el.text).decode())
    c._restart()
    return "success", None


def failure_text(el):
    t = el.find(q(NS_SASL, "text"))
    return "" if t is None else (t.text or "")


def assert_logged_in(c, user, resource):
    assert c.bind(resource) == "%s/%s" % (user.jid, resource)
    assert c.ping("localhost").get("type") == "result"


# ------------------------------------------------------------------ features
@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_features_offer_plus_and_list_both_types(stack, cb_clients, version):
    c = cb_clients(version=version)
    mechs = c.mechanisms()
    assert "SCRAM-SHA-1-PLUS" in mechs and "SCRAM-SHA-256-PLUS" in mechs, dump(c.features)
    assert {"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"} <= set(mechs), dump(c.features)
    # XEP-0440: a stream feature of its own, beside <mechanisms/>.
    assert sorted(advertised_types(c.features) or []) == sorted(TYPES), dump(c.features)


def test_tls12_without_extended_master_secret_offers_no_tls_exporter(stack, cb_clients, new_user):
    """RFC 9266 section 3: on TLS 1.2, tls-exporter only with the extended master secret."""
    c = cb_clients(version="1.2", no_ems=True)
    assert advertised_types(c.features) == ["tls-server-end-point"], dump(c.features)
    assert "SCRAM-SHA-256-PLUS" in c.mechanisms(), dump(c.features)
    u = new_user()
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", "p=tls-exporter,,",
                     c.binding("tls-exporter"))
    assert cond == "malformed-request", dump(el)
    assert "unsupported-channel-binding-type" in failure_text(el), dump(el)
    cond, _ = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS",
                    "p=tls-server-end-point,,", c.binding("tls-server-end-point"))
    assert cond == "success"
    assert_logged_in(c, u, "noems")


# ------------------------------------------------------------------ success
@pytest.mark.parametrize("version", ["1.3", "1.2"])
@pytest.mark.parametrize("cb_type", TYPES)
@pytest.mark.parametrize("mech,hash_name", PLUS_MECHS)
def test_plus_login(stack, cb_clients, new_user, mech, hash_name, cb_type, version):
    u = new_user()
    c = cb_clients(version=version)
    cond, el = scram(c, u.localpart, u.password, mech, "p=%s,," % cb_type, c.binding(cb_type))
    assert cond == "success", dump(el)
    assert_logged_in(c, u, "plus")


def test_plus_login_with_authzid(stack, cb_clients, new_user):
    """The gs2 header with an authzid is part of c= too."""
    u = new_user()
    c = cb_clients()
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS",
                     "p=tls-exporter,a=%s," % u.jid, c.binding("tls-exporter"))
    assert cond == "success", dump(el)
    assert_logged_in(c, u, "authzid")


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("cb_type", TYPES)
def test_binding_of_another_connection_fails(stack, cb_clients, new_user, cb_type):
    """A man in the middle holds two TLS connections: the client's binding data are those
    of the other one (RFC 5802: channel-bindings-dont-match)."""
    u = new_user()
    c = cb_clients()
    other = cb_clients(version="1.2")
    wrong = other.binding(cb_type)
    if cb_type == "tls-server-end-point":
        # Same certificate on both connections: the man in the middle has his own.
        wrong = hashlib.sha256(b"the certificate of the man in the middle").digest()
    assert wrong != c.binding(cb_type)
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", "p=%s,," % cb_type, wrong)
    assert cond == "not-authorized", dump(el)
    assert "channel-bindings-dont-match" in failure_text(el), dump(el)
    # The stream goes on and the right binding gets in.
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", "p=%s,," % cb_type,
                     c.binding(cb_type))
    assert cond == "success", dump(el)
    assert_logged_in(c, u, "after")


def test_binding_data_of_the_other_type_fails(stack, cb_clients, new_user):
    u = new_user()
    c = cb_clients()
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-1-PLUS", "p=tls-exporter,,",
                     c.binding("tls-server-end-point"))
    assert cond == "not-authorized", dump(el)


def test_binding_without_data_fails(stack, cb_clients, new_user):
    u = new_user()
    c = cb_clients()
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", "p=tls-exporter,,", b"")
    assert cond == "not-authorized", dump(el)
    assert "channel-bindings-dont-match" in failure_text(el), dump(el)


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_p_with_non_plus_mechanism_fails(stack, cb_clients, new_user, mech):
    u = new_user()
    c = cb_clients()
    cond, el = scram(c, u.localpart, u.password, mech, "p=tls-exporter,,",
                     c.binding("tls-exporter"))
    assert cond == "malformed-request", dump(el)
    assert "-PLUS" in failure_text(el), dump(el)


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_y_with_non_plus_while_plus_offered_fails(stack, cb_clients, new_user, mech):
    """RFC 5802 section 6: 'y' says the client could bind but saw no -PLUS; it was offered,
    so the mechanism list was stripped on the way (downgrade)."""
    u = new_user()
    c = cb_clients()
    assert "SCRAM-SHA-256-PLUS" in c.mechanisms()
    cond, el = scram(c, u.localpart, u.password, mech, "y,,")
    assert cond == "not-authorized", dump(el)
    assert "server-does-support-channel-binding" in failure_text(el), dump(el)
    # 'n' (a client without channel binding) is fine on the same stream.
    cond, el = scram(c, u.localpart, u.password, mech, "n,,")
    assert cond == "success", dump(el)


@pytest.mark.parametrize("gs2", ["n,,", "y,,"])
def test_plus_mechanism_without_binding_fails(stack, cb_clients, new_user, gs2):
    u = new_user()
    c = cb_clients()
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", gs2)
    assert cond == "malformed-request", dump(el)


def test_unsupported_binding_type_fails(stack, cb_clients, new_user):
    u = new_user()
    c = cb_clients()
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", "p=tls-unique,,",
                     b"\0" * 12)
    assert cond == "malformed-request", dump(el)
    assert "unsupported-channel-binding-type" in failure_text(el), dump(el)


def test_wrong_password_with_binding_is_not_authorized(stack, cb_clients, new_user):
    u = new_user()
    c = cb_clients()
    cond, el = scram(c, u.localpart, u.password + "x", "SCRAM-SHA-256-PLUS", "p=tls-exporter,,",
                     c.binding("tls-exporter"))
    assert cond == "not-authorized", dump(el)


# ------------------------------------------------------------------ without TLS
def test_plus_not_offered_without_tls(stack, extra_frontend, clients, new_user):
    fe = extra_frontend(require_tls="false")
    u = new_user()
    c = clients(fe.port)
    features = c.open_stream()
    mechs = c.mechanisms(features)
    assert "SCRAM-SHA-256" in mechs, dump(features)
    assert not [m for m in mechs if m.endswith("-PLUS")], dump(features)
    assert advertised_types(features) is None, dump(features)
    sc = ScramClient(u.localpart, u.password)
    c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256-PLUS'>%s</auth>"
           % (NS_SASL, b64("p=tls-exporter,," + sc.client_first_bare)))
    el = c.recv()
    assert el.tag == q(NS_SASL, "failure"), dump(el)
    assert c.failure_condition(el) == "encryption-required", dump(el)
    # Nothing was offered here, so 'y' (client could bind, server cannot) is accepted.
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256", "y,,")
    assert cond == "success", dump(el)
    assert_logged_in(c, u, "plain-tcp")


# ------------------------------------------------------------------ certificates
def make_cert(dirpath, name, newkey, digest):
    cert, key = dirpath / (name + ".pem"), dirpath / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-" + digest] + newkey +
                   ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def certs():
    d = Path(tempfile.mkdtemp(prefix="xmpp-cb-"))
    out = {
        "ec-sha512": make_cert(d, "ec512", ["-newkey", "ec", "-pkeyopt",
                                            "ec_paramgen_curve:P-384"], "sha512"),
        "rsa-sha384": make_cert(d, "rsa384", ["-newkey", "rsa:2048"], "sha384"),
        "rsa-sha1": make_cert(d, "rsa1", ["-newkey", "rsa:2048"], "sha1"),
    }
    yield out
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cert_frontend(stack):
    """cert_frontend(pairs) -> Frontend serving the (cert, key) pairs, with a direct TLS
    listener (.tls_port)."""
    if getattr(stack, "remote", False):
        pytest.skip("starts its own frontend")
    started = []

    def start(pairs):
        tls_port = free_port()
        env = dict(NO_IP_LIMITS)
        env["tls_cert"] = ",".join(str(p[0]) for p in pairs)
        env["tls_key"] = ",".join(str(p[1]) for p in pairs)
        env["c2s_tls_listen"] = "127.0.0.1:%d" % tls_port
        stack._extra += 1
        fe = Frontend(stack, "cb%d" % stack._extra, env)
        fe.tls_port = tls_port
        started.append(fe)
        # Its own certificates: the probe login does not verify them.
        wait_probe_login(fe, stack.probe)
        wait_port(tls_port, READY_TIMEOUT, fe.proc, fe.log)
        return fe
    yield start
    problems = []
    for fe in started:
        problems += fe.stop()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind,hash_used", [("ec-sha512", "sha512"), ("rsa-sha384", "sha384"),
                                            ("rsa-sha1", "sha256")])
def test_server_end_point_hash_follows_certificate(stack, certs, cert_frontend, cb_clients,
                                                   new_user, kind, hash_used):
    """RFC 5929 section 4.1: the certificate's signature hash, SHA-256 for SHA-1."""
    fe = cert_frontend([certs[kind]])
    u = new_user()
    c = cb_clients(fe.port, version="1.3")
    der = crypto.dump_certificate(crypto.FILETYPE_ASN1, c.conn.get_peer_certificate())
    data = hashlib.new(hash_used, der).digest()
    assert data == c.binding("tls-server-end-point")
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS",
                     "p=tls-server-end-point,,", data)
    assert cond == "success", dump(el)


@pytest.mark.parametrize("cipher,kind", [("ECDHE-RSA-AES128-GCM-SHA256", "rsa-sha384"),
                                         ("ECDHE-ECDSA-AES128-GCM-SHA256", "ec-sha512")])
def test_server_end_point_uses_the_certificate_served(stack, certs, cert_frontend, cb_clients,
                                                      new_user, cipher, kind):
    """With an ECDSA and an RSA certificate, the binding is the hash of the one this
    connection got."""
    fe = cert_frontend([certs["ec-sha512"], certs["rsa-sha384"]])
    u = new_user()
    c = cb_clients(fe.port, version="1.2", ciphers=cipher)
    served = crypto.dump_certificate(crypto.FILETYPE_ASN1, c.conn.get_peer_certificate())
    want = Path(certs[kind][0]).read_text()
    assert served == crypto.dump_certificate(
        crypto.FILETYPE_ASN1, crypto.load_certificate(crypto.FILETYPE_PEM, want.encode()))
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-1-PLUS", "p=tls-server-end-point,,",
                     c.binding("tls-server-end-point"))
    assert cond == "success", dump(el)


@pytest.mark.parametrize("cb_type", TYPES)
def test_plus_login_on_direct_tls(stack, certs, cert_frontend, new_user, cb_type):
    """XEP-0368 direct TLS: the same bindings as after STARTTLS."""
    fe = cert_frontend([certs["ec-sha512"]])
    u = new_user()
    c = CBClient(fe.tls_port, domain=stack.domain, timeout=5.0)
    try:
        c.tls_handshake(tls_context("1.3"))
        c.open_stream()
        assert sorted(advertised_types(c.features) or []) == sorted(TYPES), dump(c.features)
        cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", "p=%s,," % cb_type,
                         c.binding(cb_type))
        assert cond == "success", dump(el)
        assert_logged_in(c, u, "direct")
    finally:
        c.close()


# ------------------------------------------------------------------ sasl_channel_binding = false
def test_channel_binding_can_be_turned_off(stack, extra_frontend, cb_clients, new_user):
    """For clients that fail channel binding (README): no -PLUS, no <sasl-channel-binding/>,
    and the gs2 flag 'y' is accepted again, under TLS."""
    fe = extra_frontend(sasl_channel_binding="false", **NO_IP_LIMITS)
    u = new_user()
    c = cb_clients(fe.port)
    assert not [m for m in c.mechanisms() if m.endswith("-PLUS")], dump(c.features)
    assert "SCRAM-SHA-256" in c.mechanisms(), dump(c.features)
    assert advertised_types(c.features) is None, dump(c.features)
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256-PLUS", "p=tls-exporter,,",
                     c.binding("tls-exporter"))
    assert cond == "invalid-mechanism", dump(el)
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-1", "y,,")
    assert cond == "success", dump(el)
    assert_logged_in(c, u, "cb-off")


def test_refused_binding_does_not_lock_the_address_out(stack, extra_frontend, cb_clients,
                                                        new_user):
    """A client that binds only with a type we do not offer (slixmpp 1.8: tls-unique) says
    'y' with SCRAM-SHA-* and then falls back to another mechanism: that refusal is not a
    wrong password, so its address is not locked out (auth_failures_per_ip), while wrong
    passwords still are."""
    fe = extra_frontend(auth_failures_per_ip="3", auth_backoff="60")
    u = new_user()
    for _ in range(3):
        c = cb_clients(fe.port)
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            cond, el = scram(c, u.localpart, u.password, mech, "y,,")
            assert cond == "not-authorized", dump(el)
            assert "server-does-support-channel-binding" in failure_text(el), dump(el)
    c = cb_clients(fe.port)
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256", "n,,")
    assert cond == "success", dump(el)
    assert_logged_in(c, u, "after-y")
    # Wrong passwords are still counted: three lock the address.
    c = cb_clients(fe.port)
    for _ in range(3):
        cond, el = scram(c, u.localpart, "wrong-" + u.password, "SCRAM-SHA-256", "n,,")
        assert cond == "not-authorized", dump(el)
    cond, el = scram(c, u.localpart, u.password, "SCRAM-SHA-256", "n,,")
    assert cond == "temporary-auth-failure", dump(el)

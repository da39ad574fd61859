"""Stream negotiation (RFC 6120 sections 4, 5, 6, 7): headers, features, STARTTLS."""

import ssl
import time
import warnings
from xml.sax.saxutils import quoteattr

import pytest

from xmpp_client import (NS_BIND, NS_SASL, NS_SESSION, NS_TLS, STREAM_ERROR_TAG, STREAM_TAG,
                         StreamClosed, q, dump)


def test_stream_header_and_features_before_tls(stack, clients):
    c = clients()
    features = c.open_stream()
    h = c.header
    assert c.headers[0][0] == STREAM_TAG, c.headers
    assert h.get("from") == "localhost", h
    assert h.get("version") == "1.0", h
    assert h.get("id"), "stream header without id: %r" % h
    starttls = features.find(q(NS_TLS, "starttls"))
    assert starttls is not None, "no <starttls/> offered: %s" % dump(features)
    assert starttls.find(q(NS_TLS, "required")) is not None, \
        "require_tls=true but <starttls/> lacks <required/>: %s" % dump(features)
    assert features.find(q(NS_SASL, "mechanisms")) is None, \
        "SASL mechanisms offered before TLS although TLS is required: %s" % dump(features)
    assert features.find(q(NS_BIND, "bind")) is None, dump(features)


def test_stream_ids_are_fresh(stack, clients):
    ids = []
    for _ in range(2):
        c = clients()
        c.open_stream()
        ids.append(c.header.get("id"))
    c.starttls()
    ids.append(c.header.get("id"))   # RFC 6120 4.7.3: a new id after the restart
    assert all(ids), ids
    assert len(set(ids)) == 3, "stream ids are reused: %r" % ids


def test_starttls_then_sasl_features(stack, clients):
    c = clients()
    c.open_stream()
    features = c.starttls()
    ver = c.sock.version()
    assert ver in ("TLSv1.2", "TLSv1.3"), ver
    # The certificate served is the one configured (the client already checked it against
    # the generated CA file and the name 'localhost').
    with open(stack.cafile) as f:
        assert ssl.DER_cert_to_PEM_cert(c.sock.getpeercert(True)).strip() == f.read().strip()
    assert c.header.get("from") == "localhost" and c.header.get("version") == "1.0", c.header
    mechs = c.mechanisms(features)
    for m in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        assert m in mechs, "%s not offered after TLS: %r" % (m, mechs)
    assert features.find(q(NS_TLS, "starttls")) is None, \
        "STARTTLS offered again after TLS: %s" % dump(features)
    assert features.find(q(NS_BIND, "bind")) is None, dump(features)


def test_features_after_sasl_offer_bind_and_optional_session(stack, clients, new_user):
    u = new_user()
    c = clients()
    c.open_stream()
    c.starttls()
    assert c.auth_scram(u.localpart, u.password) == "success"
    f = c.features
    assert f.find(q(NS_BIND, "bind")) is not None, "no <bind/> after SASL: %s" % dump(f)
    sess = f.find(q(NS_SESSION, "session"))
    assert sess is not None and sess.find(q(NS_SESSION, "optional")) is not None, \
        "expected <session><optional/></session>: %s" % dump(f)
    assert f.find(q(NS_SASL, "mechanisms")) is None, "mechanisms offered again: %s" % dump(f)
    assert f.find(q(NS_TLS, "starttls")) is None, dump(f)
    assert c.header.get("from") == "localhost", c.header


def test_tls_1_1_is_refused(stack, clients):
    c = clients()
    c.open_stream()
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert c.recv().tag == q(NS_TLS, "proceed")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("local OpenSSL cannot offer TLS 1.1")
    c.sock.settimeout(5)
    try:
        s = ctx.wrap_socket(c.sock, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError, OSError):
        return  # refused, as it should be
    version = s.version()
    s.close()
    raise AssertionError("server accepted a %s handshake (TLS 1.2+ required)" % version)


def test_wrong_to_domain_gets_host_unknown(stack, clients):
    # RFC 6120 4.9.3.6: the 'to' of the initial header is not a served domain.
    c = clients()
    c.send(c.stream_header(to="not-served.example"))
    c.expect_stream_error("host-unknown")
    assert c.header is not None and c.header.get("version") == "1.0", \
        "server must open its own stream before the error: %r" % c.header


def test_whitespace_keepalives_are_harmless(stack, login, new_user):
    u = new_user()
    c = login(u, resource="ka")
    for _ in range(3):
        c.send_raw(b" \n")
    r = c.ping("localhost")
    assert r.get("type") == "result", dump(r)
    c.send_raw(b"\n\n \t ")
    c.message(c.jid, "after keepalive")
    m = c.wait_message("after keepalive")
    assert m.get("from") == c.jid, dump(m)
    c.send_raw(b"   ")
    assert c.ping().get("type") == "result"


def test_whitespace_before_tls_and_auth_is_harmless(stack, clients, new_user):
    u = new_user()
    c = clients()
    c.open_stream()
    c.send_raw(b" \n")
    c.starttls()
    c.send_raw(b"\n ")
    assert c.auth_scram(u.localpart, u.password) == "success"
    c.send_raw(b"  ")
    assert c.bind("ws") == "%s/ws" % u.jid


def test_client_stream_close_is_answered_and_socket_closed(stack, login, new_user):
    u = new_user()
    c = login(u, resource="bye")
    c.end_stream()
    assert c.eof


def test_stream_close_before_auth(stack, clients):
    c = clients()
    c.open_stream()
    c.end_stream()


@pytest.mark.parametrize("header", [
    # content namespace of a server-to-server stream
    "<stream:stream to='localhost' version='1.0' xmlns='jabber:server' "
    "xmlns:stream='http://etherx.jabber.org/streams'>",
    # wrong stream namespace
    "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
    "xmlns:stream='urn:example:not-streams'>",
], ids=["jabber:server", "bad-stream-ns"])
def test_wrong_namespaces_are_invalid_namespace(stack, clients, header):
    # RFC 6120 4.9.3.10
    c = clients()
    c.send(header)
    c.expect_stream_error("invalid-namespace")


def test_unknown_top_level_element_is_unsupported_stanza_type(stack, login, new_user):
    # RFC 6120 4.9.3.24
    c = login(new_user(), resource="odd")
    c.send("<frobnicate xmlns='jabber:client'/>")
    c.expect_stream_error("unsupported-stanza-type")


def test_idle_unauthenticated_connection_times_out(stack, extra_frontend, clients):
    fe = extra_frontend(auth_timeout="1")
    c = clients(fe.port)
    c.open_stream()
    c.expect_stream_error("connection-timeout", timeout=5)


# The frontend releases the XML parser of a stream idle for 1 s (stream.c, PARSER_IDLE_MS;
# its timer may add 0.25 s) and makes it again from the stream header when bytes come.
PARSER_IDLE = 1.6


def test_idle_stream_resumes_with_its_header(stack, clients, new_user):
    # What the client declared on its stream header still holds after every idle time: an
    # unusual prefix for the stream namespace (its end tag must match) and a prefix used
    # only later in a stanza. Restarts (STARTTLS, SASL) and a stanza split across an idle
    # time work as without one.
    u = new_user()
    c = clients()
    hdr = ("<?xml version='1.0'?><s:stream to=%s version='1.0' xmlns='jabber:client' "
           "xmlns:s='http://etherx.jabber.org/streams' xmlns:p='urn:xmpp:ping'>")
    c.stream_header = lambda to=None: hdr % quoteattr(c.domain if to is None else to)
    c.open_stream()
    time.sleep(PARSER_IDLE)
    c.starttls()
    time.sleep(PARSER_IDLE)
    assert c.auth_scram(u.localpart, u.password) == "success"
    time.sleep(PARSER_IDLE)
    jid = c.bind("idle")
    c.presence()
    time.sleep(PARSER_IDLE)
    r = c.iq("get", "<p:ping/>")
    assert r.get("type") == "result", dump(r)
    time.sleep(PARSER_IDLE)
    c.send_raw(("<message to=%s type='chat'><bo" % quoteattr(jid)).encode())
    time.sleep(PARSER_IDLE)
    c.send_raw(b"dy>split over an idle time</body></message>")
    m = c.wait_message("split over an idle time")
    assert m.get("from") == jid, dump(m)
    time.sleep(PARSER_IDLE)
    c.send_raw(b"</s:stream>")
    deadline = time.monotonic() + 5
    while not c.stream_ended and time.monotonic() < deadline:
        try:
            el = c.recv(max(deadline - time.monotonic(), 0))
        except StreamClosed:
            break
        assert el.tag != STREAM_ERROR_TAG, dump(el)
    assert c.stream_ended, "no </stream:stream> from the server"

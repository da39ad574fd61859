"""SASL (RFC 6120 section 6, RFC 5802, RFC 7677, RFC 4616)."""

import base64
import uuid

import pytest

from xmpp_client import (NS_SASL, NS_TLS, ScramClient, b64, dump, q)

SCRAM_MECHS = [("SCRAM-SHA-256", "SHA-256"), ("SCRAM-SHA-1", "SHA-1")]


def tls_client(clients, port=None):
    c = clients(port)
    c.open_stream()
    c.starttls()
    return c


def sasl_failure(c):
    el = c.recv()
    assert el.tag == q(NS_SASL, "failure"), "expected SASL <failure/>, got %s" % dump(el)
    return c.failure_condition(el)


def scram_server_first(c, user, hash_name="SHA-256"):
    """Sends a SCRAM client-first; returns (ScramClient, server-first string)."""
    sc = ScramClient(user, "irrelevant", hash_name)
    c.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, sc.mechanism, b64(sc.client_first())))
    el = c.recv()
    assert el.tag == q(NS_SASL, "challenge"), "expected a <challenge/>, got %s" % dump(el)
    return sc, base64.b64decode(el.text, validate=True).decode()


def assert_bound_and_working(c, user, resource):
    assert c.bind(resource) == "%s/%s" % (user.jid, resource)
    r = c.ping("localhost")
    assert r.get("type") == "result", dump(r)


@pytest.mark.parametrize("mech,hash_name", SCRAM_MECHS)
def test_scram_success_verifies_server_signature(stack, clients, new_user, mech, hash_name):
    u = new_user()
    c = tls_client(clients)
    # auth_scram raises unless the server-final-message carries a valid v= signature.
    assert c.auth_scram(u.localpart, u.password, hash_name) == "success"
    assert c.last_scram.server_signature is not None
    assert_bound_and_working(c, u, "scram")


def test_scram_parameters(stack, clients, new_user):
    u = new_user()
    c = tls_client(clients)
    sc, first = scram_server_first(c, u.localpart)
    attrs = ScramClient.parse(first)
    assert attrs["r"].startswith(sc.cnonce) and len(attrs["r"]) > len(sc.cnonce) + 8, first
    assert len(base64.b64decode(attrs["s"])) >= 8, "salt too short: %r" % first
    assert int(attrs["i"]) >= 4096, "RFC 7677: iteration count should be >= 4096: %r" % first


def test_plain_success_after_tls(stack, clients, new_user):
    u = new_user()
    c = tls_client(clients)
    assert c.auth_plain(u.localpart, u.password) == "success"
    assert_bound_and_working(c, u, "plain")


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_wrong_password_then_retry(stack, clients, new_user, mech):
    u = new_user()
    c = tls_client(clients)
    assert c.auth(u.localpart, u.password + "x", mech) == "not-authorized"
    # The stream stays open and the client may try again.
    assert c.auth(u.localpart, u.password, mech) == "success"
    assert_bound_and_working(c, u, "retry")


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_unknown_user_not_authorized(stack, clients, new_user, mech):
    c = tls_client(clients)
    assert c.auth("nosuchuser" + uuid.uuid4().hex[:10], "whatever", mech) == "not-authorized"
    u = new_user()
    assert c.auth(u.localpart, u.password, mech) == "success"


@pytest.mark.parametrize("mech,hash_name", SCRAM_MECHS)
def test_unknown_user_indistinguishable_in_scram(stack, clients, new_user, mech, hash_name):
    """An unknown user gets the same kind of challenge as a real one and fails only at the
    proof, with the same condition."""
    real = new_user()
    c = tls_client(clients)
    _, real_first = scram_server_first(c, real.localpart, hash_name)
    real_attrs = ScramClient.parse(real_first)
    c.send("<abort xmlns='%s'/>" % NS_SASL)
    assert sasl_failure(c) == "aborted"

    sc, ghost_first = scram_server_first(c, "ghost" + real.localpart, hash_name)
    ghost_attrs = ScramClient.parse(ghost_first)
    assert sorted(ghost_attrs) == sorted(real_attrs), (real_first, ghost_first)
    assert ghost_attrs["i"] == real_attrs["i"], \
        "iteration count differs for unknown users: %r vs %r" % (real_first, ghost_first)
    assert len(base64.b64decode(ghost_attrs["s"])) == len(base64.b64decode(real_attrs["s"]))
    c.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(sc.client_final(ghost_first))))
    assert sasl_failure(c) == "not-authorized"


def test_unknown_mechanism(stack, clients, new_user):
    c = tls_client(clients)
    c.send("<auth xmlns='%s' mechanism='X-NO-SUCH-MECH'>%s</auth>" % (NS_SASL, b64("x")))
    assert sasl_failure(c) == "invalid-mechanism"
    u = new_user()
    assert c.auth_scram(u.localpart, u.password) == "success"


def test_plain_bad_base64(stack, clients, new_user):
    c = tls_client(clients)
    c.send("<auth xmlns='%s' mechanism='PLAIN'>!!not*base64!!</auth>" % NS_SASL)
    assert sasl_failure(c) == "incorrect-encoding"
    u = new_user()
    assert c.auth_plain(u.localpart, u.password) == "success"


def test_scram_bad_base64_in_auth(stack, clients, new_user):
    c = tls_client(clients)
    c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%%%%%%</auth>" % NS_SASL)
    assert sasl_failure(c) == "incorrect-encoding"
    u = new_user()
    assert c.auth_scram(u.localpart, u.password) == "success"


def test_scram_bad_base64_in_response(stack, clients, new_user):
    u = new_user()
    c = tls_client(clients)
    scram_server_first(c, u.localpart)
    c.send("<response xmlns='%s'>@@@not base64@@@</response>" % NS_SASL)
    assert sasl_failure(c) == "incorrect-encoding"
    assert c.auth_scram(u.localpart, u.password) == "success"


@pytest.mark.parametrize("client_first", [
    "x,,n=user,r=abcdefgh",      # bad gs2 cbind flag
    "n,,r=abcdefgh",             # no username
    "n,,n=user",                 # no nonce
    "garbage",
])
def test_scram_malformed_client_first(stack, clients, new_user, client_first):
    c = tls_client(clients)
    c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>" % (NS_SASL, b64(client_first)))
    assert sasl_failure(c) == "malformed-request"
    u = new_user()
    assert c.auth_scram(u.localpart, u.password) == "success"


def test_scram_malformed_client_final(stack, clients, new_user):
    u = new_user()
    c = tls_client(clients)
    scram_server_first(c, u.localpart)
    c.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64("this is not scram")))
    assert sasl_failure(c) == "malformed-request"
    assert c.auth_scram(u.localpart, u.password) == "success"


def test_plain_malformed(stack, clients, new_user):
    u = new_user()
    c = tls_client(clients)
    c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, b64(u.localpart + u.password)))
    assert sasl_failure(c) == "malformed-request"
    assert c.auth_plain(u.localpart, u.password) == "success"


def test_abort_mid_exchange(stack, clients, new_user):
    u = new_user()
    c = tls_client(clients)
    scram_server_first(c, u.localpart)
    c.send("<abort xmlns='%s'/>" % NS_SASL)
    assert sasl_failure(c) == "aborted"
    assert c.auth_scram(u.localpart, u.password) == "success"
    assert_bound_and_working(c, u, "afterabort")


def test_auth_before_starttls_is_encryption_required(stack, clients, new_user):
    u = new_user()
    c = clients()
    c.open_stream()
    c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
           % (NS_SASL, b64("\0%s\0%s" % (u.localpart, u.password))))
    assert sasl_failure(c) == "encryption-required"
    # Still usable: STARTTLS and a login go through.
    c.starttls()
    assert c.auth_scram(u.localpart, u.password) == "success"


def test_scram_before_starttls_is_encryption_required(stack, clients, new_user):
    u = new_user()
    c = clients()
    c.open_stream()
    sc = ScramClient(u.localpart, u.password)
    c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>" % (NS_SASL, b64(sc.client_first())))
    assert sasl_failure(c) == "encryption-required"


@pytest.mark.parametrize("before_tls", [False, True])
def test_stanza_before_auth_is_not_authorized(stack, clients, new_user, before_tls):
    u = new_user()
    c = clients()
    c.open_stream()
    if not before_tls:
        c.starttls()
    c.send("<message to='%s' type='chat'><body>sneaky</body></message>" % u.jid)
    c.expect_stream_error("not-authorized")


def test_iq_before_auth_is_not_authorized(stack, clients):
    c = clients()
    c.open_stream()
    c.starttls()
    c.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    c.expect_stream_error("not-authorized")


def test_bind_before_auth_is_not_authorized(stack, clients):
    c = clients()
    c.open_stream()
    c.starttls()
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    c.expect_stream_error("not-authorized")


# ------------------------------------------------------------ frontend with require_tls=false
def test_optional_tls_frontend(stack, extra_frontend, clients, login, new_user):
    fe = extra_frontend(require_tls="false")
    u = new_user()
    c = clients(fe.port)
    features = c.open_stream()
    mechs = c.mechanisms(features)
    assert "SCRAM-SHA-256" in mechs and "SCRAM-SHA-1" in mechs, \
        "SCRAM must be offered without TLS when TLS is optional: %s" % dump(features)
    assert "PLAIN" not in mechs, "PLAIN offered without TLS: %s" % dump(features)
    starttls = features.find(q(NS_TLS, "starttls"))
    if starttls is not None:
        assert starttls.find(q(NS_TLS, "required")) is None, dump(features)

    c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
           % (NS_SASL, b64("\0%s\0%s" % (u.localpart, u.password))))
    assert sasl_failure(c) == "encryption-required"
    assert c.auth_scram(u.localpart, u.password, "SHA-256") == "success"
    jid = c.bind("plaintext")
    assert jid == u.jid + "/plaintext"
    c.presence()

    # Routing works between this frontend and the main one, both directions.
    other = new_user()
    o = login(other, resource="main")
    c.message(o.jid, "from the plaintext frontend")
    m = o.wait_message("from the plaintext frontend")
    assert m.get("from") == jid, dump(m)
    o.message(jid, "back to the plaintext frontend")
    m = c.wait_message("back to the plaintext frontend")
    assert m.get("from") == o.jid, dump(m)


def test_optional_tls_frontend_still_offers_plain_after_tls(stack, extra_frontend, clients, new_user):
    fe = extra_frontend(require_tls="false")
    u = new_user()
    c = clients(fe.port)
    features = c.open_stream()
    if features.find(q(NS_TLS, "starttls")) is None:
        pytest.skip("this frontend does not offer STARTTLS when TLS is optional")
    features = c.starttls()
    assert "PLAIN" in c.mechanisms(features), dump(features)
    assert c.auth_plain(u.localpart, u.password) == "success"

"""SASL (RFC 6120 section 6, RFC 5802, RFC 7677, RFC 4616)."""

import base64
import uuid

import pytest

from xmpp_client import (NS_SASL, NS_STREAMS_ERR, NS_TLS, STREAM_ERROR_TAG, ScramClient, b64,
                         child_conditions, dump, q)

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


def test_too_many_failures_end_the_stream(stack, clients, new_user):
    # RFC 6120 6.4.5: a reasonable number of retries (at least 2, no more than 5), then
    # the stream is closed with a stream error, "which SHOULD be <policy-violation/>,
    # although some existing implementations send <not-authorized/> instead".
    u = new_user()
    c = tls_client(clients)
    failures = 0
    el = None
    for _ in range(8):
        c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
               % (NS_SASL, b64("\0%s\0wrong" % u.localpart)))
        el = c.recv()
        if el.tag != q(NS_SASL, "failure"):
            break
        assert c.failure_condition(el) == "not-authorized", dump(el)
        failures += 1
    assert el.tag == STREAM_ERROR_TAG, "no stream error after %d failures: %s" % (failures, dump(el))
    # failures = the first attempt plus the retries allowed
    assert 3 <= failures <= 6, "failed attempts allowed before the stream ended: %d" % failures
    conds = child_conditions(el, NS_STREAMS_ERR)
    assert set(conds) & {"policy-violation", "not-authorized"}, dump(el)
    c.assert_closed()


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256"])
def test_authzid_of_own_jid_is_accepted(stack, clients, new_user, mech):
    u = new_user()
    c = tls_client(clients)
    if mech == "PLAIN":
        c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
               % (NS_SASL, b64("%s\0%s\0%s" % (u.jid, u.localpart, u.password))))
        el = c.recv()
        assert el.tag == q(NS_SASL, "success"), dump(el)
    else:
        sc = ScramClient(u.localpart, u.password)
        sc.gs2_header = "n,a=%s," % u.jid
        c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>" % (NS_SASL, b64(sc.client_first())))
        el = c.recv()
        assert el.tag == q(NS_SASL, "challenge"), dump(el)
        c.send("<response xmlns='%s'>%s</response>"
               % (NS_SASL, b64(sc.client_final(base64.b64decode(el.text).decode()))))
        el = c.recv()
        assert el.tag == q(NS_SASL, "success"), dump(el)
        sc.verify_server_final(base64.b64decode(el.text).decode())


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256"])
def test_authzid_of_other_user_is_invalid_authzid(stack, clients, new_user, mech):
    u, other = new_user(), new_user()
    c = tls_client(clients)
    if mech == "PLAIN":
        c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
               % (NS_SASL, b64("%s\0%s\0%s" % (other.jid, u.localpart, u.password))))
        assert sasl_failure(c) == "invalid-authzid"
    else:
        sc = ScramClient(u.localpart, u.password)
        sc.gs2_header = "n,a=%s," % other.jid
        c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>" % (NS_SASL, b64(sc.client_first())))
        el = c.recv()
        if el.tag == q(NS_SASL, "challenge"):
            c.send("<response xmlns='%s'>%s</response>"
                   % (NS_SASL, b64(sc.client_final(base64.b64decode(el.text).decode()))))
            el = c.recv()
        assert el.tag == q(NS_SASL, "failure"), "logged in as another user's authzid: %s" % dump(el)
        assert c.failure_condition(el) == "invalid-authzid", dump(el)
    # Nothing was granted: a proper login still works afterwards.
    assert c.auth_scram(u.localpart, u.password) == "success"
    assert c.bind("me") == u.jid + "/me"


# The gs2 flag 'y' (RFC 5802 section 6) is refused under TLS, where -PLUS is offered, and
# accepted without TLS, where it is not: test_channel_binding.py.


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_non_ascii_username_and_password(stack, clients, mech):
    name = "j\u00f6rg" + uuid.uuid4().hex[:8]
    password = "p\u00e4ss \u2603 w\u00f6rd"
    r = stack.ctl("adduser", name + "@localhost", password)
    assert r.returncode == 0, r.stderr
    c = tls_client(clients)
    assert c.auth(name, password, mech) == "success"
    assert c.bind("uni") == "%s@localhost/uni" % name


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_password_is_saslprepped(stack, clients, mech):
    """RFC 5802 2.2: the password goes through SASLprep (RFC 4013) before keys are derived.
    A SCRAM client sends proofs made from the prepared form; PLAIN sends what was typed,
    and the server prepares it."""
    name = "prep" + uuid.uuid4().hex[:8]
    typed = "soft\u00adhyphen and\u00a0nbsp \u2168"    # SOFT HYPHEN, NO-BREAK SPACE, U+2168
    prepared = "softhyphen and nbsp IX"
    r = stack.ctl("adduser", name + "@localhost", typed)
    assert r.returncode == 0, r.stderr
    c = tls_client(clients)
    assert c.auth(name, typed if mech == "PLAIN" else prepared, mech) == "success"
    if mech == "PLAIN":
        c2 = tls_client(clients)
        assert c2.auth(name, prepared, mech) == "success"


def test_password_that_saslprep_prohibits_is_refused(stack):
    name = "prep" + uuid.uuid4().hex[:8]
    r = stack.ctl("adduser", name + "@localhost", "bell\x07")
    assert r.returncode == 1
    assert "SASLprep" in r.stderr, r.stderr
    assert stack.ctl("users").stdout.find(name) < 0

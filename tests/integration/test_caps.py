"""Entity capabilities (XEP-0115): the server learns what an unknown hash names by asking
the client (disco#info to its full JID, node#ver), checks the answer against the hash
(section 5.4) and keeps only verified hashes, in Redis for every later session."""

import time
import uuid

from caps_helpers import (answer_caps_query, caps_element, caps_ver, disco_payload,
                          is_caps_query)
from conftest import REDIS_PREFIX

IDENTITY = [("client", "pc", "", "Test client")]


def unique_features():
    return ["http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
            "urn:xmpp:avatar:metadata+notify", "urn:test:caps:%s" % uuid.uuid4().hex]


def caps_key(ver, hash_="sha-1"):
    return "%scaps:%s:%s" % (REDIS_PREFIX, hash_, ver)


def announce(c, ver, node="https://example.org/test-client"):
    c.send("<presence>%s</presence>" % caps_element(ver, node=node))


def wait_query(c, ver, node="https://example.org/test-client"):
    return c.wait_for(lambda e: is_caps_query(e, ver, node), what="the server's caps query")


def sync(c):
    """Once the server answered a ping, it has processed what this client sent before."""
    assert c.ping().get("type") == "result"


def wait_cached(stack, ver, hash_="sha-1"):
    for _ in range(100):
        v = stack.redis.command("GET", caps_key(ver, hash_))
        if v is not None:
            return v.decode()
        time.sleep(0.05)
    raise AssertionError("capabilities %s were not cached" % ver)


def test_unknown_hash_is_asked_verified_and_cached(stack, new_user, login):
    features = unique_features()
    ver = caps_ver(IDENTITY, features)
    u = new_user()
    c1 = login(u, resource="one", priority=False)
    announce(c1, ver)
    iq = wait_query(c1, ver)
    assert iq.get("from") == "localhost"
    answer_caps_query(c1, iq, disco_payload(IDENTITY, features))
    cached = wait_cached(stack, ver)
    assert sorted(cached.split("\n")) == sorted(features)
    # Another session with the same capabilities is not asked again.
    c2 = login(new_user(), resource="two", priority=False)
    announce(c2, ver)
    c2.expect_nothing(lambda e: is_caps_query(e, ver), 1.0)


def test_a_hash_cached_in_redis_is_not_asked(stack, new_user, login):
    """A hash another router learnt (or this one, before a restart) comes from Redis."""
    features = unique_features()
    ver = caps_ver(IDENTITY, features)
    stack.redis.command("SET", caps_key(ver), "\n".join(features))
    c = login(new_user(), priority=False)
    announce(c, ver)
    c.expect_nothing(lambda e: is_caps_query(e, ver), 1.0)


def test_the_examples_of_xep_0115_verify(stack, new_user, login):
    # Section 5.2: the simple example.
    simple_ids = [("client", "pc", "", "Exodus 0.9.1")]
    simple_features = ["http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
                       "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc"]
    simple_ver = "QgayPKawpkPSDYmwT/WM94uAlu0="
    assert caps_ver(simple_ids, simple_features) == simple_ver
    # Section 5.3: identities in two languages and an extended form.
    complex_ids = [("client", "pc", "en", "Psi 0.11"), ("client", "pc", "el", "Ψ 0.11")]
    complex_features = simple_features
    complex_forms = [[("FORM_TYPE", ["urn:xmpp:dataforms:softwareinfo"]),
                      ("ip_version", ["ipv4", "ipv6"]), ("os", ["Mac"]),
                      ("os_version", ["10.5.1"]), ("software", ["Psi"]),
                      ("software_version", ["0.11"])]]
    complex_ver = "q07IKJEyjvHSyhy//CH0CxmKi8w="
    assert caps_ver(complex_ids, complex_features, complex_forms) == complex_ver
    for ver, payload, node in (
            (simple_ver, disco_payload(simple_ids, simple_features),
             "http://code.google.com/p/exodus"),
            (complex_ver, disco_payload(complex_ids, complex_features, complex_forms),
             "http://psi-im.org")):
        stack.redis.command("DEL", caps_key(ver))
        c = login(new_user(), priority=False)
        announce(c, ver, node=node)
        answer_caps_query(c, wait_query(c, ver, node=node), payload)
        assert "http://jabber.org/protocol/muc" in wait_cached(stack, ver).split("\n")


def assert_not_taken(new_user, login, ver, answer_payload):
    """The first client answers `answer_payload` for `ver`; the hash must not be taken: a
    second client announcing it is asked again."""
    c1 = login(new_user(), priority=False)
    announce(c1, ver)
    answer_caps_query(c1, wait_query(c1, ver), answer_payload)
    sync(c1)
    c2 = login(new_user(), priority=False)
    announce(c2, ver)
    wait_query(c2, ver)


def test_an_answer_that_does_not_match_the_hash_is_not_taken(stack, new_user, login):
    features = unique_features()
    ver = caps_ver(IDENTITY, features)
    assert_not_taken(new_user, login, ver, disco_payload(IDENTITY, features[:-1]))
    assert stack.redis.command("GET", caps_key(ver)) is None


def test_an_answer_with_a_feature_twice_is_not_taken(stack, new_user, login):
    """XEP-0115 5.4 step 3.4: duplicate features make the answer unusable, even when the
    hash was computed over them."""
    features = unique_features()
    twice = features + [features[0]]
    ver = caps_ver(IDENTITY, twice)
    assert_not_taken(new_user, login, ver, disco_payload(IDENTITY, twice))


def test_an_error_answer_is_not_taken(stack, new_user, login):
    features = unique_features()
    ver = caps_ver(IDENTITY, features)
    c1 = login(new_user(), priority=False)
    announce(c1, ver)
    iq = wait_query(c1, ver)
    c1.send("<iq type='error' id='%s' to='localhost'><error type='cancel'>"
            "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            % iq.get("id"))
    sync(c1)
    c2 = login(new_user(), priority=False)
    announce(c2, ver)
    wait_query(c2, ver)


def test_an_answer_from_another_client_is_not_taken(stack, new_user, login):
    """Only the JID asked may answer: another client replaying the id is ignored."""
    features = unique_features()
    ver = caps_ver(IDENTITY, features)
    c1 = login(new_user(), priority=False)
    other = login(new_user(), priority=False)
    announce(c1, ver)
    iq = wait_query(c1, ver)
    answer_caps_query(other, iq, disco_payload(IDENTITY, features))
    sync(other)
    assert stack.redis.command("GET", caps_key(ver)) is None
    # The one asked can still answer.
    answer_caps_query(c1, iq, disco_payload(IDENTITY, features))
    wait_cached(stack, ver)


def test_legacy_and_unknown_hash_algorithms_are_not_asked(stack, new_user, login):
    c = login(new_user(), priority=False)
    c.send("<presence><c xmlns='http://jabber.org/protocol/caps' node='n' ver='1.0' "
           "ext='a b'/></presence>")
    c.send("<presence>%s</presence>" % caps_element("abc", hash_="md5"))
    c.expect_nothing(lambda e: e.tag.endswith("iq") and e.get("type") == "get", 1.0)


def test_one_hash_learnt_by_two_sessions_at_once(stack, new_user, login):
    """Two clients announce the same unknown hash before either answered: each is asked,
    both answers are good, the second finds the first's entry (a double free there once
    aborted the router); the router keeps serving and a third client is not asked."""
    features = unique_features()
    ver = caps_ver(IDENTITY, features)
    c1 = login(new_user(), priority=False)
    c2 = login(new_user(), priority=False)
    announce(c1, ver)
    announce(c2, ver)
    q1, q2 = wait_query(c1, ver), wait_query(c2, ver)
    answer_caps_query(c1, q1, disco_payload(IDENTITY, features))
    answer_caps_query(c2, q2, disco_payload(IDENTITY, features))
    sync(c1)
    sync(c2)
    wait_cached(stack, ver)
    c3 = login(new_user(), priority=False)
    announce(c3, ver)
    c3.expect_nothing(lambda e: is_caps_query(e, ver), 1.0)


def redis_round_trip(c):
    """A request the router answers only after Redis did: everything the router sent
    after earlier Redis replies (the caps queries after the cache lookups) came first."""
    c.im_iq("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
            "<items node='urn:test:none'/></pubsub>")


def test_a_client_has_few_caps_queries_outstanding(stack, new_user, login):
    """A client announcing one unknown hash after another without answering has only a
    few of the server's queries outstanding (each would wait 30 s in the router), and is
    asked again once it has answered them."""
    c = login(new_user(), priority=False)
    vers = [caps_ver(IDENTITY, unique_features()) for _ in range(30)]
    asked = []
    for v in vers:
        announce(c, v)
        redis_round_trip(c)
        asked += c.im_take(lambda e: any(is_caps_query(e, v) for v in vers))
    assert 1 <= len(asked) <= 8, "%d caps queries outstanding to one client" % len(asked)
    for iq in asked:
        c.send("<iq type='error' id='%s' to='localhost'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
               % iq.get("id"))
    c.im_sync()
    features = unique_features()
    ver = caps_ver(IDENTITY, features)
    announce(c, ver)
    answer_caps_query(c, wait_query(c, ver), disco_payload(IDENTITY, features))
    wait_cached(stack, ver)


def test_one_session_keeps_few_hashes_in_redis(stack, new_user, login):
    """A client that answers for one invented hash after another may use them, but only the
    first few go to Redis, which it could otherwise fill (each stays 30 days)."""
    c = login(new_user(), priority=False)
    vers = []
    for _ in range(12):
        features = unique_features()
        ver = caps_ver(IDENTITY, features)
        announce(c, ver)
        answer_caps_query(c, wait_query(c, ver), disco_payload(IDENTITY, features))
        sync(c)
        vers.append(ver)
    wait_cached(stack, vers[7])
    stored = [v for v in vers if stack.redis.command("GET", caps_key(v)) is not None]
    assert stored == vers[:8], "%d of 12 invented hashes kept in Redis" % len(stored)
    # Past that they still count for the session: it is not asked again for the last one.
    c.send("<presence>%s</presence>" % caps_element(vers[-2]))
    c.send("<presence>%s</presence>" % caps_element(vers[-1]))
    c.expect_nothing(lambda e: is_caps_query(e, vers[-1]), 1.0)

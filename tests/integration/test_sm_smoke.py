"""Stream management smoke checks (the lead's own; the full suite is test_sm.py)."""
import time

from xmpp_client import q, dump

NS_SM = "urn:xmpp:sm:3"


def sm_login(clients, user, resource=None):
    c = clients()
    features = c.open_stream()
    c.starttls()
    assert c.auth(user.localpart, user.password) == "success"
    assert c.features.find(q(NS_SM, "sm")) is not None, dump(c.features)
    c.bind(resource)
    return c


def test_enable_ack_resume(clients, new_user, login):
    alice, bob = new_user(), new_user()
    c = sm_login(clients, alice, "phone")
    c.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    en = c.wait_for(lambda e: e.tag in (q(NS_SM, "enabled"), q(NS_SM, "failed")))
    assert en.tag == q(NS_SM, "enabled"), dump(en)
    smid = en.get("id")
    assert smid and en.get("resume") == "true"
    c.presence()
    c.send("<r xmlns='%s'/>" % NS_SM)
    a = c.wait_for(lambda e: e.tag == q(NS_SM, "a"))
    assert a.get("h") == "1", dump(a)
    b = login(bob)
    for i in range(3):
        b.message(alice.jid + "/phone", "m%d" % i)
    for i in range(3):
        c.wait_message("m%d" % i)
    c.abort()
    time.sleep(0.5)
    for i in range(3, 6):
        b.message(alice.jid + "/phone", "m%d" % i)
    time.sleep(0.3)
    c2 = clients()
    c2.open_stream()
    c2.starttls()
    assert c2.auth(alice.localpart, alice.password) == "success"
    c2.send("<resume xmlns='%s' previd='%s' h='1'/>" % (NS_SM, smid))
    r = c2.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")))
    assert r.tag == q(NS_SM, "resumed"), dump(r)
    assert r.get("h") == "1"
    got = []
    for _ in range(6):
        got.append(c2.next_message().findtext("{jabber:client}body"))
    # the presence reflection was 1 stanza? the messages are numbered after it
    assert got == ["m%d" % i for i in range(6)], got

"""RFC 6121 4.3.2: a probe for a contact with no available resource is answered with the
contact's last unavailable presence, delay-stamped (XEP-0203)."""
from xmpp_client import q, NS_CLIENT, dump

PRES = q(NS_CLIENT, "presence")


def test_probe_of_offline_contact_gets_last_unavailable(stack, login, new_user):
    a, b = new_user(), new_user()
    ca = login(a, resource="a"); cb = login(b, resource="b")
    ca.send("<presence type='subscribe' to='%s'/>" % b.jid)
    cb.wait_for(lambda e: e.tag == PRES and e.get("type") == "subscribe")
    cb.send("<presence type='subscribed' to='%s'/>" % a.jid)
    ca.wait_for(lambda e: e.tag == PRES and e.get("type") == "subscribed")
    cb.send("<presence type='unavailable'><status>gone fishing</status></presence>")
    ca.wait_for(lambda e: e.tag == PRES and e.get("type") == "unavailable")
    cb.close(); ca.close()
    ca2 = login(a, resource="a2", priority=False); ca2.presence()
    p = ca2.wait_for(lambda e: e.tag == PRES and e.get("type") == "unavailable" and e.get("from", "").startswith(b.jid))
    assert "gone fishing" in dump(p) and "urn:xmpp:delay" in dump(p), dump(p)

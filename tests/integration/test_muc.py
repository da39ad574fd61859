"""Multi-user chat (XEP-0045) on conference.localhost, with the raw client: rooms created
on join (201, locked until configured), occupants' presence in join order then one's own
(110), nickname conflicts and several resources sharing a nickname, leaving, nickname
changes (303), groupchat messages with XEP-0359 stanza ids and XEP-0421 occupant ids,
private messages, subjects, kick (307), ban (301), members-only, passwords, moderation,
the room size limit, the configuration form, destruction, invitations (mediated and
XEP-0249 direct), XEP-0410 self-ping, session end, account deletion and disco."""

import time
import uuid

import pytest

from test_im_helpers import WAIT, QUIET, assert_error, bare
from xmpp_client import IQ_TAG, MESSAGE_TAG, PRESENCE_TAG, dump, q

MUC_DOMAIN = "conference.localhost"
NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"
NS_ADMIN = NS_MUC + "#admin"
NS_OWNER = NS_MUC + "#owner"
NS_XDATA = "jabber:x:data"
NS_SID = "urn:xmpp:sid:0"
NS_OID = "urn:xmpp:occupant-id:0"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_PING = "urn:xmpp:ping"
NS_REGISTER = "jabber:iq:register"
NS_CONFERENCE = "jabber:x:conference"
CLIENT = "jabber:client"


def new_room():
    return "r%s@%s" % (uuid.uuid4().hex[:10], MUC_DOMAIN)


def codes(el):
    x = el.find(q(NS_USER, "x"))
    return set() if x is None else {int(s.get("code")) for s in x.findall(q(NS_USER, "status"))}


def item(el):
    x = el.find(q(NS_USER, "x"))
    return None if x is None else x.find(q(NS_USER, "item"))


def occupant_id(el):
    oid = el.findall(q(NS_OID, "occupant-id"))
    assert len(oid) <= 1, dump(el)
    return oid[0].get("id") if oid else None


def pres_from(frm, type_=None):
    return lambda e: e.tag == PRESENCE_TAG and e.get("from") == frm and e.get("type") == type_


def is_subject(room):
    return lambda e: (e.tag == MESSAGE_TAG and bare(e.get("from") or "") == room
                      and e.find(q(CLIENT, "subject")) is not None
                      and e.find(q(CLIENT, "body")) is None)


def groupchat_body(room, body):
    return lambda e: (e.tag == MESSAGE_TAG and bare(e.get("from") or "") == room
                      and e.get("type") == "groupchat" and e.findtext(q(CLIENT, "body")) == body)


def join(c, room, nick, password=None, extra=""):
    """Sends the join presence; returns the self-presence (status 110), after which the
    subject arrives (waited for too)."""
    pw = "" if password is None else "<password>%s</password>" % password
    c.send("<presence to='%s/%s'><x xmlns='%s'>%s</x>%s</presence>" % (room, nick, NS_MUC, pw, extra))
    me = c.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("from") == "%s/%s" % (room, nick)
                   and (110 in codes(e) or e.get("type") == "error"), WAIT, "self-presence")
    assert e_type(me) != "error", "join failed: %s" % dump(me)
    c.im_wait(is_subject(room), WAIT, "room subject")
    return me


def e_type(el):
    return el.get("type")


def join_error(c, room, nick, password=None):
    pw = "" if password is None else "<password>%s</password>" % password
    c.send("<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>" % (room, nick, NS_MUC, pw))
    return c.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("from") == "%s/%s" % (room, nick)
                     and e.get("type") == "error", WAIT, "join error")


def submit(c, room, fields=None):
    """Submits the muc#roomconfig form with `fields` (var -> value or list)."""
    body = "<field var='FORM_TYPE'><value>%s#roomconfig</value></field>" % NS_MUC
    for var, val in (fields or {}).items():
        vals = val if isinstance(val, list) else [val]
        body += "<field var='%s'>%s</field>" % (var, "".join("<value>%s</value>" % v for v in vals))
    return c.im_iq("set", "<query xmlns='%s'><x xmlns='%s' type='submit'>%s</x></query>"
                   % (NS_OWNER, NS_XDATA, body), to=room)


def create(c, room, nick, fields=None):
    me = join(c, room, nick)
    assert {110, 201} <= codes(me), dump(me)
    res = submit(c, room, fields)
    assert res.get("type") == "result", dump(res)
    return me


def admin_set(c, room, item_xml):
    return c.im_iq("set", "<query xmlns='%s'>%s</query>" % (NS_ADMIN, item_xml), to=room)


def groupchat(c, room, body, extra=""):
    """Sends a groupchat message; returns its id."""
    mid = uuid.uuid4().hex[:8]
    c.send("<message to='%s' type='groupchat' id='%s'><body>%s</body>%s</message>"
           % (room, mid, body, extra))
    return mid


@pytest.fixture
def muc_user(new_user, login):
    """muc_user(prefix, resource=None, port=None) -> (user, logged-in available client)."""
    def make(prefix="m", resource=None, port=None, user=None):
        u = user or new_user(prefix)
        c = login(u, resource=resource, port=port)
        return u, c
    return make


def test_room_created_on_join_is_locked_until_the_instant_form(muc_user):
    (ua, a), (ub, b) = muc_user("own"), muc_user("oth")
    room = new_room()
    me = join(a, room, "alice")
    # XEP-0045 10.1.1: the creator is owner and moderator, told 110 and 201.
    assert {110, 201} <= codes(me)
    assert item(me).get("affiliation") == "owner" and item(me).get("role") == "moderator"
    # Locked: nobody else gets in, and the room is not listed.
    err = join_error(b, room, "bob")
    assert_error(err, "item-not-found")
    items = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=MUC_DOMAIN)
    assert room not in [i.get("jid") for i in items.iter(q(NS_DISCO_ITEMS, "item"))]
    # 10.1.2: the instant room (an empty submitted form) opens it.
    res = a.im_iq("set", "<query xmlns='%s'><x xmlns='%s' type='submit'/></query>"
                  % (NS_OWNER, NS_XDATA), to=room)
    assert res.get("type") == "result", dump(res)
    me_b = join(b, room, "bob")
    assert 201 not in codes(me_b) and item(me_b).get("role") == "participant"
    # Bob got Alice's presence before his own (join() kept it pending).
    assert len(b.im_take(pres_from(room + "/alice"))) == 1
    seen = a.im_wait(pres_from(room + "/bob"), WAIT, "bob's presence at alice")
    assert item(seen).get("affiliation") == "none"
    assert 110 not in codes(seen)
    items = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=MUC_DOMAIN)
    assert room in [i.get("jid") for i in items.iter(q(NS_DISCO_ITEMS, "item"))]


def test_occupants_come_in_join_order_before_own_presence(muc_user):
    (_, a), (_, b), (_, c) = muc_user("o1"), muc_user("o2"), muc_user("o3")
    room = new_room()
    create(a, room, "first")
    join(b, room, "second")
    c.send("<presence to='%s/third'><x xmlns='%s'/></presence>" % (room, NS_MUC))
    order = []
    while True:
        el = c.im_wait(lambda e: e.tag == PRESENCE_TAG and bare(e.get("from") or "") == room,
                       WAIT, "room presence")
        order.append(el.get("from").split("/", 1)[1])
        if 110 in codes(el):
            break
    assert order == ["first", "second", "third"]
    c.im_wait(is_subject(room), WAIT, "subject after presence")


def test_groupchat_is_reflected_with_stanza_id_and_occupant_id(muc_user):
    (ua, a), (ub, b), (uc, c) = muc_user("g1"), muc_user("g2"), muc_user("g3")
    room = new_room()
    me_a = create(a, room, "alice")
    join(b, room, "bob")
    pa = b.im_wait(pres_from(room + "/alice"), WAIT, "alice's presence")
    oid = occupant_id(pa)
    assert oid and oid == occupant_id(me_a)
    # A forged occupant id and stanza id are replaced by the room's.
    mid = groupchat(a, room, "hello room",
                    "<occupant-id xmlns='%s' id='forged'/><stanza-id xmlns='%s' by='%s' id='fake'/>"
                    % (NS_OID, NS_SID, room))
    for cl in (a, b):
        m = cl.im_wait(groupchat_body(room, "hello room"), WAIT, "reflected message")
        assert m.get("from") == room + "/alice"
        assert m.get("id") == mid  # muc#stable_id
        assert occupant_id(m) == oid
        sids = [s for s in m.findall(q(NS_SID, "stanza-id")) if s.get("by") == room]
        assert len(sids) == 1 and sids[0].get("id") != "fake", dump(m)
    # Someone not in the room cannot talk in it (7.4).
    c.send("<message to='%s' type='groupchat' id='nope'><body>x</body></message>" % room)
    err = c.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("id") == "nope", WAIT, "error")
    assert_error(err, "not-acceptable")
    b.im_expect_none(groupchat_body(room, "x"), QUIET)


def test_nick_conflict_and_one_nick_for_several_resources(muc_user, login):
    (ua, a), (ub, b) = muc_user("n1", resource="r1"), muc_user("n2")
    room = new_room()
    create(a, room, "alice")
    err = join_error(b, room, "alice")
    assert_error(err, "conflict")
    # 7.2.9: the same nick from another resource of the same bare JID joins the occupant.
    a2 = login(ua, resource="r2")
    me2 = join(a2, room, "alice")
    assert 110 in codes(me2)
    join(b, room, "bob")
    # Bob sees one alice.
    groupchat(b, room, "to both")
    for cl in (a, a2):
        cl.im_wait(groupchat_body(room, "to both"), WAIT, "message at each resource")
    # A private message reaches both of alice's resources (7.5), marked muc#user.
    b.send("<message to='%s/alice' type='chat' id='pm1'><body>psst</body></message>" % room)
    for cl in (a, a2):
        m = cl.im_wait(lambda e: e.tag == MESSAGE_TAG and e.findtext(q(CLIENT, "body")) == "psst",
                       WAIT, "private message")
        assert m.get("from") == room + "/bob" and m.find(q(NS_USER, "x")) is not None
    # One resource leaving keeps the occupant: bob sees nothing.
    a2.send("<presence to='%s/alice' type='unavailable'/>" % room)
    gone = a2.im_wait(pres_from(room + "/alice", "unavailable"), WAIT, "own unavailable")
    assert 110 in codes(gone)
    b.im_expect_none(pres_from(room + "/alice", "unavailable"), QUIET)


def test_nick_change_and_leave(muc_user):
    (_, a), (_, b) = muc_user("c1"), muc_user("c2")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    b.send("<presence to='%s/robert'/>" % room)
    # 7.6: unavailable with 303 and the new nick, then presence from the new nick.
    old = a.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "303 presence")
    assert 303 in codes(old) and item(old).get("nick") == "robert"
    a.im_wait(pres_from(room + "/robert"), WAIT, "presence under the new nick")
    mine = b.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "own 303")
    assert {303, 110} <= codes(mine)
    # The nick taken by someone else cannot be taken.
    b.send("<presence to='%s/alice'/>" % room)
    err = b.im_wait(pres_from(room + "/alice", "error"), WAIT, "conflict")
    assert_error(err, "conflict")
    # Presence updates go to everyone (7.7).
    b.send("<presence to='%s/robert'><show>away</show></presence>" % room)
    upd = a.im_wait(pres_from(room + "/robert"), WAIT, "update")
    assert upd.findtext(q(CLIENT, "show")) == "away"
    b.send("<presence to='%s/robert' type='unavailable'><status>bye</status></presence>" % room)
    left = a.im_wait(pres_from(room + "/robert", "unavailable"), WAIT, "leave")
    assert left.findtext(q(CLIENT, "status")) == "bye"
    assert 110 in codes(b.im_wait(pres_from(room + "/robert", "unavailable"), WAIT, "own"))
    # Gone: a message to the room is refused.
    b.send("<message to='%s' type='groupchat' id='late'><body>x</body></message>" % room)
    assert_error(b.im_wait(lambda e: e.get("id") == "late", WAIT, "error"), "not-acceptable")


def test_subject_change_rules(muc_user):
    (_, a), (_, b), (_, c) = muc_user("s1"), muc_user("s2"), muc_user("s3")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    b.send("<message to='%s' type='groupchat' id='subj'><subject>mine</subject></message>" % room)
    assert_error(b.im_wait(lambda e: e.get("id") == "subj" and e.get("type") == "error", WAIT,
                           "error"), "forbidden")
    a.send("<message to='%s' type='groupchat'><subject>Topic!</subject></message>" % room)
    s = b.im_wait(is_subject(room), WAIT, "subject change")
    assert s.findtext(q(CLIENT, "subject")) == "Topic!" and s.get("from") == room + "/alice"
    # A newcomer gets the subject last (7.2.15).
    c.send("<presence to='%s/carol'><x xmlns='%s'/></presence>" % (room, NS_MUC))
    c.im_wait(lambda e: e.tag == PRESENCE_TAG and 110 in codes(e), WAIT, "self")
    s = c.im_wait(is_subject(room), WAIT, "subject")
    assert s.findtext(q(CLIENT, "subject")) == "Topic!"


def test_kick_and_ban(muc_user):
    (_, a), (ub, b), (_, c) = muc_user("k1"), muc_user("k2"), muc_user("k3")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    join(c, room, "carol")
    # A participant may not kick (8.2).
    err = admin_set(c, room, "<item nick='bob' role='none'/>")
    assert_error(err, ("forbidden", "not-allowed"))
    res = admin_set(a, room, "<item nick='bob' role='none'><reason>noise</reason></item>")
    assert res.get("type") == "result", dump(res)
    for cl in (b, c):
        p = cl.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "kick presence")
        assert 307 in codes(p) and item(p).findtext(q(NS_USER, "reason")) == "noise"
        assert item(p).get("role") == "none"
    join(b, room, "bob")
    # Ban (9.1): 301, and the banned JID cannot come back.
    res = admin_set(a, room, "<item jid='%s' affiliation='outcast'/>" % ub.jid)
    assert res.get("type") == "result", dump(res)
    p = c.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "ban presence")
    assert 301 in codes(p) and item(p).get("affiliation") == "outcast"
    assert_error(join_error(b, room, "bob"), "forbidden")
    # The outcast list (9.2).
    lst = a.im_iq("get", "<query xmlns='%s'><item affiliation='outcast'/></query>" % NS_ADMIN,
                  to=room)
    assert [i.get("jid") for i in lst.iter(q(NS_ADMIN, "item"))] == [ub.jid]
    lst = c.im_iq("get", "<query xmlns='%s'><item affiliation='outcast'/></query>" % NS_ADMIN,
                  to=room)
    assert_error(lst, "forbidden")
    # The role lists (8.5): moderators read them.
    lst = a.im_iq("get", "<query xmlns='%s'><item role='participant'/></query>" % NS_ADMIN, to=room)
    assert [i.get("nick") for i in lst.iter(q(NS_ADMIN, "item"))] == ["carol"]
    lst = a.im_iq("get", "<query xmlns='%s'><item role='moderator'/></query>" % NS_ADMIN, to=room)
    assert [i.get("nick") for i in lst.iter(q(NS_ADMIN, "item"))] == ["alice"]


def test_members_only_and_password(muc_user):
    (_, a), (ub, b), (_, c) = muc_user("mo1"), muc_user("mo2"), muc_user("mo3")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_membersonly": "1"})
    assert_error(join_error(b, room, "bob"), "registration-required")
    res = admin_set(a, room, "<item jid='%s' affiliation='member'/>" % ub.jid)
    assert res.get("type") == "result", dump(res)
    me = join(b, room, "bob")
    assert item(me).get("affiliation") == "member"
    room2 = new_room()
    create(a, room2, "alice", {"muc#roomconfig_passwordprotectedroom": "1",
                               "muc#roomconfig_roomsecret": "s3cret"})
    assert_error(join_error(c, room2, "carol"), "not-authorized")
    assert_error(join_error(c, room2, "carol", password="wrong"), "not-authorized")
    join(c, room2, "carol", password="s3cret")


def test_moderated_room_voice(muc_user):
    (_, a), (_, b) = muc_user("v1"), muc_user("v2")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_moderatedroom": "1"})
    me = join(b, room, "bob")
    assert item(me).get("role") == "visitor"
    b.send("<message to='%s' type='groupchat' id='mute'><body>hi</body></message>" % room)
    assert_error(b.im_wait(lambda e: e.get("id") == "mute" and e.get("type") == "error", WAIT,
                           "error"), "forbidden")
    assert admin_set(a, room, "<item nick='bob' role='participant'/>").get("type") == "result"
    p = b.im_wait(lambda e: pres_from(room + "/bob")(e) and item(e).get("role") == "participant",
                  WAIT, "voice granted")
    assert 110 in codes(p)
    groupchat(b, room, "now I speak")
    a.im_wait(groupchat_body(room, "now I speak"), WAIT, "voiced message")


def test_room_size_limit(muc_user):
    (_, a), (_, b), (_, c) = muc_user("x1"), muc_user("x2"), muc_user("x3")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_maxusers": "2"})
    join(b, room, "bob")
    assert_error(join_error(c, room, "carol"), "service-unavailable")


def test_configuration_form_refuses_unknown_and_malformed_fields(muc_user, stack):
    from conftest import REDIS_PREFIX
    (_, a), (_, b) = muc_user("f1"), muc_user("f2")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_roomname": "Before",
                              "muc#roomconfig_persistentroom": "1"})
    key = "%smucroom:{%s}" % (REDIS_PREFIX, room)
    stored = None
    for _ in range(100):  # the router's write reaches Redis on its own connection
        stored = stack.redis.command("HGET", key, "cfg")
        if stored:
            break
        time.sleep(0.05)
    assert stored and b"Before" in stored
    form = a.im_iq("get", "<query xmlns='%s'/>" % NS_OWNER, to=room)
    assert form.get("type") == "result", dump(form)
    fields = {f.get("var") for f in form.iter(q(NS_XDATA, "field"))}
    assert "muc#roomconfig_membersonly" in fields
    for bad in ({"muc#roomconfig_roomname": "After", "x-unknown#field": "1"},
                {"muc#roomconfig_roomname": "After", "muc#roomconfig_membersonly": "maybe"}):
        res = submit(a, room, bad)
        assert_error(res, ("not-acceptable", "bad-request"))
    info = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
    assert next(info.iter(q(NS_DISCO_INFO, "identity"))).get("name") == "Before"
    assert stack.redis.command("HGET", key, "cfg") == stored  # nothing stored either
    # Only owners configure.
    join(b, room, "bob")
    assert_error(b.im_iq("get", "<query xmlns='%s'/>" % NS_OWNER, to=room), "forbidden")


def test_destroy_with_alternate_venue(muc_user):
    (_, a), (_, b) = muc_user("d1"), muc_user("d2")
    room, venue = new_room(), new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    res = a.im_iq("set", "<query xmlns='%s'><destroy jid='%s'><reason>moved</reason></destroy>"
                  "</query>" % (NS_OWNER, venue), to=room)
    assert res.get("type") == "result", dump(res)
    p = b.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "destroy presence")
    d = p.find(q(NS_USER, "x")).find(q(NS_USER, "destroy"))
    assert d is not None and d.get("jid") == venue and d.findtext(q(NS_USER, "reason")) == "moved"
    info = b.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
    assert_error(info, "item-not-found")


def test_mediated_invitation_and_decline(muc_user):
    (ua, a), (ub, b) = muc_user("i1"), muc_user("i2")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_passwordprotectedroom": "1",
                              "muc#roomconfig_roomsecret": "pw"})
    a.send("<message to='%s'><x xmlns='%s'><invite to='%s'><reason>join us</reason></invite>"
           "</x></message>" % (room, NS_USER, ub.jid))
    m = b.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("from") == room
                  and e.find(q(NS_USER, "x")) is not None, WAIT, "invitation")
    x = m.find(q(NS_USER, "x"))
    inv = x.find(q(NS_USER, "invite"))
    assert bare(inv.get("from")) == ua.jid and inv.findtext(q(NS_USER, "reason")) == "join us"
    assert x.findtext(q(NS_USER, "password")) == "pw"
    b.send("<message to='%s'><x xmlns='%s'><decline to='%s'><reason>busy</reason></decline>"
           "</x></message>" % (room, NS_USER, ua.jid))
    m = a.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("from") == room
                  and e.find(q(NS_USER, "x")) is not None, WAIT, "decline")
    dec = m.find(q(NS_USER, "x")).find(q(NS_USER, "decline"))
    assert bare(dec.get("from")) == ub.jid and dec.findtext(q(NS_USER, "reason")) == "busy"
    # A decline goes to someone of the room only: the room relays nothing to strangers.
    b.send("<message to='%s' id='dec2'><x xmlns='%s'><decline to='stranger@localhost'/>"
           "</x></message>" % (room, NS_USER))
    assert_error(b.im_wait(lambda e: e.get("id") == "dec2", WAIT, "refused decline"),
                 "not-acceptable")


def test_direct_invitation_passes_between_clients(muc_user):
    (ua, a), (ub, b) = muc_user("di1"), muc_user("di2")
    room = new_room()
    create(a, room, "alice")
    a.send("<message to='%s' id='dinv'><x xmlns='%s' jid='%s' reason='come'/></message>"
           % (ub.jid, NS_CONFERENCE, room))
    m = b.im_wait(lambda e: e.tag == MESSAGE_TAG and e.find(q(NS_CONFERENCE, "x")) is not None,
                  WAIT, "direct invitation")
    assert m.find(q(NS_CONFERENCE, "x")).get("jid") == room and bare(m.get("from")) == ua.jid
    join(b, room, "bob")


def test_self_ping(muc_user):
    (_, a), (_, b) = muc_user("p1"), muc_user("p2")
    room = new_room()
    create(a, room, "alice")
    res = a.im_iq("get", "<ping xmlns='%s'/>" % NS_PING, to=room + "/alice")
    assert res.get("type") == "result", dump(res)
    res = b.im_iq("get", "<ping xmlns='%s'/>" % NS_PING, to=room + "/alice")
    assert_error(res, "not-acceptable")
    a.send("<presence to='%s/alice' type='unavailable'/>" % room)
    a.im_wait(pres_from(room + "/alice", "unavailable"), WAIT, "left")
    # The last occupant left a temporary room: it is gone.
    res = a.im_iq("get", "<ping xmlns='%s'/>" % NS_PING, to=room + "/alice")
    assert_error(res, "item-not-found")
    assert_error(b.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room), "item-not-found")


def test_session_end_and_broadcast_unavailable_leave_rooms(muc_user):
    (_, a), (_, b), (_, c) = muc_user("e1"), muc_user("e2"), muc_user("e3")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    join(c, room, "carol")
    b.abort()
    a.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "bob gone with his session")
    c.send("<presence type='unavailable'/>")
    a.im_wait(pres_from(room + "/carol", "unavailable"), WAIT, "carol gone")


def test_account_deletion_hands_room_to_admin_or_destroys_it(muc_user, stack):
    (ua, a), (ub, b), (uc, c) = muc_user("ad1"), muc_user("ad2"), muc_user("ad3")
    kept, doomed = new_room(), new_room()
    create(a, kept, "alice", {"muc#roomconfig_persistentroom": "1"})
    create(a, doomed, "alice")
    join(b, kept, "bob")
    join(c, doomed, "carol")
    assert admin_set(a, kept, "<item jid='%s' affiliation='admin'/>" % ub.jid).get("type") == "result"
    b.im_wait(lambda e: pres_from(kept + "/bob")(e) and item(e).get("affiliation") == "admin",
              WAIT, "admin")
    r = stack.ctl("deluser", ua.jid)
    assert r.returncode == 0, r.stderr
    p = b.im_wait(lambda e: pres_from(kept + "/bob")(e) and item(e).get("affiliation") == "owner",
                  WAIT, "bob becomes owner")
    assert 110 in codes(p)
    p = c.im_wait(pres_from(doomed + "/carol", "unavailable"), WAIT, "room destroyed")
    assert p.find(q(NS_USER, "x")).find(q(NS_USER, "destroy")) is not None
    lst = b.im_iq("get", "<query xmlns='%s'><item affiliation='owner'/></query>" % NS_ADMIN, to=kept)
    assert [i.get("jid") for i in lst.iter(q(NS_ADMIN, "item"))] == [ub.jid]
    # The stored room follows: the deleted account has no affiliation left in Redis.
    from conftest import REDIS_PREFIX
    key = "%smucroom:{%s}" % (REDIS_PREFIX, kept)
    for _ in range(100):
        fields = stack.redis.command("HGETALL", key)
        stored = dict(zip(fields[::2], fields[1::2]))
        if stored.get(("a:" + ub.jid).encode()) == b"owner":
            break
        time.sleep(0.05)
    assert stored.get(("a:" + ub.jid).encode()) == b"owner", stored
    assert ("a:" + ua.jid).encode() not in stored


def test_registered_nick_is_reserved(muc_user):
    (ua, a), (ub, b), (uc, c) = muc_user("rg1"), muc_user("rg2"), muc_user("rg3")
    room = new_room()
    create(a, room, "alice")
    form = b.im_iq("get", "<query xmlns='%s'/>" % NS_REGISTER, to=room)
    assert "muc#register_roomnick" in {f.get("var") for f in form.iter(q(NS_XDATA, "field"))}
    res = b.im_iq("set", "<query xmlns='%s'><x xmlns='%s' type='submit'>"
                  "<field var='FORM_TYPE'><value>%s#register</value></field>"
                  "<field var='muc#register_roomnick'><value>bobby</value></field></x></query>"
                  % (NS_REGISTER, NS_XDATA, NS_MUC), to=room)
    assert res.get("type") == "result", dump(res)
    got = b.im_iq("get", "<query xmlns='%s'/>" % NS_REGISTER, to=room)
    assert got.find(q(NS_REGISTER, "query")).findtext(q(NS_REGISTER, "username")) == "bobby"
    assert_error(join_error(c, room, "bobby"), "conflict")
    # 7.12: the reserved nickname, asked with disco#info node x-roomuser-item.
    res = b.im_iq("get", "<query xmlns='%s' node='x-roomuser-item'/>" % NS_DISCO_INFO, to=room)
    assert next(res.iter(q(NS_DISCO_INFO, "identity"))).get("name") == "bobby"
    res = c.im_iq("get", "<query xmlns='%s' node='x-roomuser-item'/>" % NS_DISCO_INFO, to=room)
    assert res.get("type") == "result" and not list(res.iter(q(NS_DISCO_INFO, "identity")))
    join(b, room, "bobby")


def test_disco_of_service_and_room(muc_user):
    (_, a), = [muc_user("ds")]
    info = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=MUC_DOMAIN)
    ident = info.find(q(NS_DISCO_INFO, "query")).find(q(NS_DISCO_INFO, "identity"))
    assert (ident.get("category"), ident.get("type")) == ("conference", "text")
    feats = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert NS_MUC in feats
    # The server lists the service.
    items = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to="localhost")
    assert MUC_DOMAIN in [i.get("jid") for i in items.iter(q(NS_DISCO_ITEMS, "item"))]
    public, hidden = new_room(), new_room()
    create(a, public, "alice", {"muc#roomconfig_roomname": "Lobby"})
    create(a, hidden, "alice", {"muc#roomconfig_publicroom": "0"})
    items = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=MUC_DOMAIN)
    listed = {i.get("jid"): i.get("name") for i in items.iter(q(NS_DISCO_ITEMS, "item"))}
    assert listed.get(public) == "Lobby" and hidden not in listed
    info = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=hidden)
    feats = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert {NS_MUC, "muc_hidden", "muc_temporary", NS_OID, NS_SID,
            "http://jabber.org/protocol/muc#self-ping-optimization"} <= feats
    assert_error(a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=new_room()),
                 "item-not-found")


def test_room_name_nodeprep_refuses(muc_user):
    (_, a), = [muc_user("np")]
    a.send("<presence to='bad\u00a0\u2028room@%s/nick'><x xmlns='%s'/></presence>" % (MUC_DOMAIN, NS_MUC))
    err = a.im_wait(lambda e: e.get("type") == "error", WAIT, "error")
    assert_error(err, "jid-malformed")


def test_persistent_room_survives_a_router_restart(private_stack):
    """Configuration, affiliations, registered nicknames and subject of a persistent room
    are in Redis; occupants are not: after the restart the room is empty and a self-ping
    tells a client it must join again (XEP-0410)."""
    from xmpp_client import XMPPClient
    ps = private_stack
    ua, ub, uc = ps.new_user("pa"), ps.new_user("pb"), ps.new_user("pc")
    made = []

    def client(u):
        c = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile)
        made.append(c)
        c.login(u.localpart, u.password, resource="r")
        c.presence()
        c.im_sync()
        return c
    try:
        a, b, c = client(ua), client(ub), client(uc)
        room = new_room()
        create(a, room, "alice", {"muc#roomconfig_persistentroom": "1",
                                  "muc#roomconfig_membersonly": "1",
                                  "muc#roomconfig_roomname": "Kept"})
        assert admin_set(a, room, "<item jid='%s' affiliation='member'/>" % ub.jid).get("type") == "result"
        a.send("<message to='%s' type='groupchat'><subject>Still here</subject></message>" % room)
        a.im_wait(is_subject(room), WAIT, "subject")
        # A temporary room goes with the restart, and so must what was said in it.
        temp = new_room()
        create(a, temp, "alice")
        groupchat(a, temp, "said in a temporary room")
        a.im_wait(groupchat_body(temp, "said in a temporary room"), WAIT, "reflection")
        ps.stop_router(allow_error_lines=False)
        ps.start_router()
        # The frontend resends the sessions; the room comes back from Redis without
        # occupants (a stanza that arrives while the rooms are read waits for them).
        res = a.im_iq("get", "<ping xmlns='%s'/>" % NS_PING, to=room + "/alice", timeout=10)
        assert_error(res, "not-acceptable")
        info = a.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        assert next(info.iter(q(NS_DISCO_INFO, "identity"))).get("name") == "Kept"
        feats = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
        assert {"muc_persistent", "muc_membersonly"} <= feats
        assert_error(join_error(c, room, "carol"), "registration-required")
        me = join(b, room, "bob")
        assert item(me).get("affiliation") == "member"
        me = join(a, room, "alice")
        assert item(me).get("affiliation") == "owner" and 201 not in codes(me)
        a.send("<presence to='%s/alice' type='unavailable'/>" % room)
        b.send("<presence to='%s/bob' type='unavailable'/>" % room)
        b.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "left")
        # A persistent room outlives its last occupant.
        info = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        assert info.get("type") == "result", dump(info)
        # Someone else makes a new room of the temporary one's name: it starts empty.
        c.send("<presence to='%s/carol'><x xmlns='%s'><history maxstanzas='20'/></x>"
               "</presence>" % (temp, NS_MUC))
        c.im_wait(is_subject(temp), WAIT, "carol's join of the new room")
        c.im_expect_none(groupchat_body(temp, "said in a temporary room"), QUIET,
                         "the old room's history")
    finally:
        for cl in made:
            cl.close()


def test_service_limits(stack):
    """muc_max_rooms_per_user, muc_max_occupants and muc_max_affiliations."""
    from conftest import running_private_stack
    from xmpp_client import XMPPClient
    with running_private_stack(stack, "muclim", router_env={"muc_max_rooms_per_user": "1",
                                                            "muc_max_occupants": "1",
                                                            "muc_max_affiliations": "10"}) as ps:
        ua, ub = ps.new_user("la"), ps.new_user("lb")
        made = []
        try:
            for u in (ua, ub):
                cl = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile)
                made.append(cl)
                cl.login(u.localpart, u.password, resource="r")
                cl.presence()
                cl.im_sync()
            a, b = made
            room = new_room()
            create(a, room, "alice")
            assert_error(join_error(a, new_room(), "alice"), "resource-constraint")
            assert_error(join_error(b, room, "bob"), "service-unavailable")
            # muc_max_affiliations: the owner is one; nine more fit, the tenth does not.
            items = "".join("<item jid='m%d@localhost' affiliation='member'/>" % i
                            for i in range(9))
            assert admin_set(a, room, items).get("type") == "result"
            res = admin_set(a, room, "<item jid='one-more@localhost' affiliation='outcast'/>")
            assert_error(res, "policy-violation")
        finally:
            for cl in made:
                cl.close()


def test_iq_between_occupants_goes_through_the_room(muc_user):
    """XEP-0045 6.7: a query to room/nick reaches that occupant's client from the asker's
    occupant JID, and the answer comes back to the asker under its own id."""
    (ua, a), (_, b), (_, c) = muc_user("q1"), muc_user("q2"), muc_user("q3")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    b.send("<iq type='get' id='ask1' to='%s/alice'><query xmlns='jabber:iq:version'/></iq>" % room)
    fw = a.im_wait(lambda e: e.tag == IQ_TAG and e.get("type") == "get", WAIT, "forwarded iq")
    assert fw.get("from") == room + "/bob" and fw.get("id") != "ask1"
    a.send("<iq type='result' id='%s' to='%s'><query xmlns='jabber:iq:version'><name>cl</name>"
           "</query></iq>" % (fw.get("id"), room + "/bob"))
    res = b.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == "ask1", WAIT, "answer")
    assert res.get("type") == "result" and res.get("from") == room + "/alice"
    assert res.find(".//{jabber:iq:version}name").text == "cl"
    # A non-occupant's query is refused; its ping says it is not joined.
    res = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room + "/alice")
    assert_error(res, "bad-request")
    # A ping to another occupant is passed on too (XEP-0410 section 3).
    b.send("<iq type='get' id='ping2' to='%s/alice'><ping xmlns='%s'/></iq>" % (room, NS_PING))
    fw = a.im_wait(lambda e: e.tag == IQ_TAG and e.get("type") == "get", WAIT, "forwarded ping")
    a.send("<iq type='result' id='%s' to='%s'/>" % (fw.get("id"), room + "/bob"))
    assert b.im_wait(lambda e: e.get("id") == "ping2", WAIT, "pong").get("type") == "result"


def test_error_from_a_gone_client_takes_it_out(muc_user):
    """XEP-0045 18.1: an error saying the client is gone takes it out (333); another
    error (refusing one message) does not."""
    (_, a), (_, b) = muc_user("gh1"), muc_user("gh2")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    err = "<error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
    b.send("<message to='%s/alice' type='error'>%s</message>" % (room, err % ("modify", "not-acceptable")))
    a.im_expect_none(pres_from(room + "/bob", "unavailable"), QUIET)
    b.send("<message to='%s' type='error'>%s</message>" % (room, err % ("cancel", "service-unavailable")))
    p = a.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "bob taken out")
    assert 333 in codes(p)


def test_join_order_presence_history_then_subject(muc_user):
    """XEP-0045 7.2.3 / 7.2.15 / 7.2.16: occupants' presence, own presence, the history
    (oldest first, delayed, from the room) and the subject last."""
    (_, a), (_, b) = muc_user("h1"), muc_user("h2")
    room = new_room()
    create(a, room, "alice")
    for i in range(3):
        groupchat(a, room, "old %d" % i)
        a.im_wait(groupchat_body(room, "old %d" % i), WAIT, "reflection")
    a.send("<message to='%s' type='groupchat'><subject>The topic</subject></message>" % room)
    a.im_wait(is_subject(room), WAIT, "subject")
    b.send("<presence to='%s/bob'><x xmlns='%s'><history maxstanzas='10'/></x></presence>"
           % (room, NS_MUC))
    seen = []
    while True:
        el = b.im_wait(lambda e: bare(e.get("from") or "") == room, WAIT, "room stanza")
        if el.tag == PRESENCE_TAG:
            seen.append(("presence", el.get("from").split("/", 1)[1], 110 in codes(el)))
        elif is_subject(room)(el):
            seen.append(("subject", el.findtext(q(CLIENT, "subject"))))
            break
        else:
            assert el.find("{urn:xmpp:delay}delay") is not None, dump(el)
            seen.append(("history", el.findtext(q(CLIENT, "body"))))
    bodies = [s[1] for s in seen if s[0] == "history" and s[1]]
    assert seen[:2] == [("presence", "alice", False), ("presence", "bob", True)], seen
    assert bodies == ["old 0", "old 1", "old 2"], seen
    assert seen[-1] == ("subject", "The topic")


def test_configuration_change_is_announced(muc_user):
    """XEP-0045 10.2.1: status 104, and 172 when the room becomes non-anonymous (then
    everyone sees real JIDs)."""
    (_, a), (ub, b) = muc_user("cc1"), muc_user("cc2")
    room = new_room()
    create(a, room, "alice")
    me = join(b, room, "bob")
    assert 100 not in codes(me)
    assert submit(a, room, {"muc#roomconfig_whois": "anyone"}).get("type") == "result"
    m = b.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("from") == room and 104 in codes(e),
                  WAIT, "104")
    assert 172 in codes(m)
    b.send("<presence to='%s/bob'><show>dnd</show></presence>" % room)
    me = b.im_wait(lambda e: pres_from(room + "/bob")(e) and 110 in codes(e), WAIT, "own update")
    assert 100 in codes(me) and bare(item(me).get("jid")) == ub.jid


def test_voice_request_approved_by_a_moderator(muc_user):
    """XEP-0045 7.13 / 8.6: a visitor asks for voice, the moderator gets the form and
    approves it."""
    (_, a), (_, b) = muc_user("vr1"), muc_user("vr2")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_moderatedroom": "1"})
    join(b, room, "bob")
    b.send("<message to='%s'><x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s#request"
           "</value></field><field var='muc#role'><value>participant</value></field></x></message>"
           % (room, NS_XDATA, NS_MUC))
    req = a.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("from") == room
                    and e.find(q(NS_XDATA, "x")) is not None, WAIT, "voice request form")
    vals = {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in req.iter(q(NS_XDATA, "field"))}
    assert vals["muc#roomnick"] == "bob" and vals["muc#request_allow"] == "false"
    a.send("<message to='%s'><x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s#request"
           "</value></field><field var='muc#roomnick'><value>bob</value></field>"
           "<field var='muc#request_allow'><value>true</value></field></x></message>"
           % (room, NS_XDATA, NS_MUC))
    p = b.im_wait(lambda e: pres_from(room + "/bob")(e) and item(e).get("role") == "participant",
                  WAIT, "voice granted")
    assert 110 in codes(p)


def test_occupant_whose_frontend_died_is_taken_out_on_the_next_send(muc_user, extra_frontend):
    """XEP-0045 18.1: a stanza the room cannot deliver (the occupant's frontend was
    killed, before the router notices it by missed heartbeats) takes the occupant out,
    with status 333, instead of leaving a ghost."""
    fe = extra_frontend(frontend_name="fe-ghost")
    (_, a), (_, b) = muc_user("gf1"), muc_user("gf2", port=fe.port)
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    fe.kill()
    for i in range(20):
        groupchat(a, room, "anyone there %d" % i)
        a.im_wait(groupchat_body(room, "anyone there %d" % i), WAIT, "reflection")
        gone = a.im_take(pres_from(room + "/bob", "unavailable"))
        if gone:
            break
    else:
        gone = [a.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "bob taken out")]
    assert 333 in codes(gone[0]), dump(gone[0])


def test_members_only_switch_and_membership_removal(muc_user):
    """XEP-0045 9.4 / 10.2: non-members go when the room becomes members-only (322); a
    member whose membership is taken goes too (321)."""
    (_, a), (ub, b), (uc, c) = muc_user("ms1"), muc_user("ms2"), muc_user("ms3")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    join(c, room, "carol")
    assert admin_set(a, room, "<item jid='%s' affiliation='member'/>" % uc.jid).get("type") == "result"
    assert submit(a, room, {"muc#roomconfig_membersonly": "1"}).get("type") == "result"
    p = b.im_wait(pres_from(room + "/bob", "unavailable"), WAIT, "322")
    assert {322, 110} <= codes(p)
    c.im_expect_none(pres_from(room + "/carol", "unavailable"), QUIET)
    assert admin_set(a, room, "<item jid='%s' affiliation='none'/>" % uc.jid).get("type") == "result"
    p = a.im_wait(pres_from(room + "/carol", "unavailable"), WAIT, "321")
    assert 321 in codes(p)


def test_private_message_rules(muc_user):
    """XEP-0045 7.5 with muc#roomconfig_allowpm: moderators only."""
    (_, a), (_, b) = muc_user("pm1"), muc_user("pm2")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_allowpm": "moderators"})
    join(b, room, "bob")
    b.send("<message to='%s/alice' type='chat' id='pmx'><body>hi</body></message>" % room)
    assert_error(b.im_wait(lambda e: e.get("id") == "pmx", WAIT, "refused pm"), "not-acceptable")
    a.send("<message to='%s/bob' type='chat' id='pmy'><body>from the mod</body></message>" % room)
    m = b.im_wait(lambda e: e.tag == MESSAGE_TAG and e.findtext(q(CLIENT, "body")) == "from the mod",
                  WAIT, "moderator's pm")
    assert m.get("from") == room + "/alice" and m.find(q(NS_USER, "x")) is not None
    a.send("<message to='%s/nobody' type='chat' id='pmz'><body>x</body></message>" % room)
    assert_error(a.im_wait(lambda e: e.get("id") == "pmz", WAIT, "no such nick"), "item-not-found")


def test_owner_changes(muc_user):
    """XEP-0045 10.3 ff.: an owner makes another owner; the only owner cannot step down
    (conflict) until there is another; an admin may not touch owners."""
    (ua, a), (ub, b), (uc, c) = muc_user("ow1"), muc_user("ow2"), muc_user("ow3")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    join(c, room, "carol")
    assert_error(admin_set(a, room, "<item jid='%s' affiliation='admin'/>" % ua.jid), "conflict")
    assert admin_set(a, room, "<item jid='%s' affiliation='admin'/>" % uc.jid).get("type") == "result"
    assert_error(admin_set(c, room, "<item jid='%s' affiliation='member'/>" % ua.jid),
                 ("not-allowed", "forbidden"))
    assert admin_set(a, room, "<item jid='%s' affiliation='owner'/>" % ub.jid).get("type") == "result"
    p = b.im_wait(lambda e: pres_from(room + "/bob")(e) and item(e).get("affiliation") == "owner",
                  WAIT, "bob owner")
    assert item(p).get("role") == "moderator"
    assert admin_set(a, room, "<item jid='%s' affiliation='admin'/>" % ua.jid).get("type") == "result"
    lst = b.im_iq("get", "<query xmlns='%s'><item affiliation='owner'/></query>" % NS_ADMIN, to=room)
    assert [i.get("jid") for i in lst.iter(q(NS_ADMIN, "item"))] == [ub.jid]


def test_one_request_cannot_remove_every_owner(muc_user):
    """Section 10.7 counted over one muc#admin request: two owners demoting each other
    (and themselves) together leave none, so it is refused and nothing changes."""
    (ua, a), (ub, b) = muc_user("oa"), muc_user("ob")
    room = new_room()
    create(a, room, "alice")
    assert admin_set(a, room, "<item jid='%s' affiliation='owner'/>" % ub.jid).get("type") == "result"
    res = admin_set(a, room, "<item jid='%s' affiliation='member'/><item jid='%s' "
                    "affiliation='member'/>" % (ub.jid, ua.jid))
    assert_error(res, "conflict")
    lst = a.im_iq("get", "<query xmlns='%s'><item affiliation='owner'/></query>" % NS_ADMIN, to=room)
    assert sorted(i.get("jid") for i in lst.iter(q(NS_ADMIN, "item"))) == sorted([ua.jid, ub.jid])


def test_live_messages_wait_for_the_joiner_subject(muc_user):
    """Section 7.2.2: a newcomer gets presences, its own, the history, the subject, and
    only then what the room says live, even when that is said during its join."""
    (_, a), (_, b) = muc_user("ra"), muc_user("rb")
    room = new_room()
    create(a, room, "alice")
    groupchat(a, room, "old")
    a.im_wait(groupchat_body(room, "old"), WAIT, "old")
    # The join and a message in one write: the message is reflected while the history is
    # being read.
    b.send_raw(("<presence to='%s/bob'><x xmlns='%s'/></presence>"
                "<message to='%s' type='groupchat' id='live1'><body>live</body></message>"
                % (room, NS_MUC, room)).encode())
    order = []
    while not ("subject" in order and "msg:live" in order):
        el = b.im_wait(lambda e: e.tag in (MESSAGE_TAG, PRESENCE_TAG), WAIT, "the join")
        if el.tag == MESSAGE_TAG and el.find(q(CLIENT, "subject")) is not None:
            order.append("subject")
        elif el.tag == MESSAGE_TAG:
            order.append("msg:" + (el.findtext(q(CLIENT, "body")) or ""))
        else:
            order.append("pres:" + el.get("from").split("/", 1)[-1])
    assert order == ["pres:alice", "pres:bob", "msg:old", "subject", "msg:live"], order


def test_join_presence_again_gets_the_join_again(muc_user):
    """A client that sends its join presence again while the room has it in (it lost
    track) gets its presence and the subject again, which it waits for."""
    (_, a), (_, b) = muc_user("ja"), muc_user("jb")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    b.im_collect(0.3)
    b.send("<presence to='%s/bob'><x xmlns='%s'/></presence>" % (room, NS_MUC))
    b.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("from") == room + "/bob"
              and 110 in codes(e), WAIT, "self-presence")
    b.im_wait(is_subject(room), WAIT, "the subject after joining again")


def test_private_messages_are_not_carbon_copied(muc_user, login):
    """XEP-0280 section 6: a room's private message reaches the occupant's resources in
    the room from the room; no carbon copy doubles it or reaches resources not in it."""
    NS_CARBONS = "urn:xmpp:carbons:2"
    (ua, a), (ub, b1) = muc_user("pa"), muc_user("pb", resource="one")
    b2 = login(ub, resource="two")
    b3 = login(ub, resource="three")     # not in the room
    for c in (b1, b2, b3):
        assert c.im_iq("set", "<enable xmlns='%s'/>" % NS_CARBONS).get("type") == "result"
    room = new_room()
    create(a, room, "alice")
    join(b1, room, "bob")
    join(b2, room, "bob")
    a.send("<message to='%s/bob' type='chat' id='pm1'><body>psst</body></message>" % room)
    for c in (b1, b2):
        c.im_wait(lambda e: e.tag == MESSAGE_TAG and e.findtext(q(CLIENT, "body")) == "psst",
                  WAIT, "the private message")
    for c in (b1, b2, b3):
        c.im_expect_none(lambda e: e.tag == MESSAGE_TAG and
                         e.find(q(NS_CARBONS, "received")) is not None, QUIET, "a carbon copy")


def test_blocking_the_room_stops_what_it_sends(muc_user):
    """XEP-0191: a user who blocks an occupant's room JID gets no private message from
    it; blocking the room stops its groupchat messages."""
    NS_BLOCKING = "urn:xmpp:blocking"
    (_, a), (_, b) = muc_user("ba"), muc_user("bb")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    r = b.im_iq("set", "<block xmlns='%s'><item jid='%s/alice'/></block>" % (NS_BLOCKING, room))
    assert r.get("type") == "result", dump(r)
    a.send("<message to='%s/bob' type='chat' id='pmb'><body>blocked pm</body></message>" % room)
    b.im_expect_none(lambda e: e.tag == MESSAGE_TAG and
                     e.findtext(q(CLIENT, "body")) == "blocked pm", QUIET, "a blocked PM")
    r = b.im_iq("set", "<block xmlns='%s'><item jid='%s'/></block>" % (NS_BLOCKING, room))
    assert r.get("type") == "result", dump(r)
    groupchat(a, room, "blocked room")
    a.im_wait(groupchat_body(room, "blocked room"), WAIT, "alice's reflection")
    b.im_expect_none(groupchat_body(room, "blocked room"), QUIET, "a message of a blocked room")

"""A room's messages (muc_archive.c): history on join (XEP-0045 7.2.15: maxstanzas,
maxchars, seconds, since; after the occupants' presence, before the subject, each with a
<delay/> from the room), the XEP-0359 stanza-id the room stamps (forged ones removed), and
the room's XEP-0313 archive: the id a query returns is the reflected message's stanza-id,
'with' an occupant, RSM paging both ways, flip-page, the form, metadata; who may read it;
the per-room cap and expiry; a destroyed room's archive is gone."""

import time
import uuid
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

from conftest import REDIS_PREFIX
from test_im_helpers import WAIT, assert_error, bare, configured_stack
from test_mam import Page, form, rsm
from test_muc import (CLIENT, MESSAGE_TAG, NS_MUC, NS_OWNER, NS_SID, PRESENCE_TAG, codes,
                      create, groupchat, groupchat_body, is_subject, join, muc_user, new_room)
from xmpp_client import IQ_TAG, XMPPClient, dump, new_id, q

NS_MAM = "urn:xmpp:mam:2"
NS_FWD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"

__all__ = ["muc_user"]  # the fixture, imported for pytest


def tag():
    return uuid.uuid4().hex[:6]


def say(c, room, text, extra=""):
    """Sends a groupchat message and returns the room's reflection of it to the sender."""
    groupchat(c, room, escape(text), extra)
    return c.im_wait(groupchat_body(room, text), WAIT, "reflection of %r" % text)


def room_sid(m, room):
    ids = [s.get("id") for s in m.findall(q(NS_SID, "stanza-id")) if s.get("by") == room]
    assert len(ids) == 1, "one stanza-id by the room: %s" % dump(m)
    return ids[0]


def enter(c, room, nick, history=""):
    """Joins with <history/> attributes `history`; returns everything that arrived up to
    and including the subject, in arrival order."""
    h = "<history %s/>" % history if history else ""
    c.send("<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>" % (room, nick, NS_MUC, h))
    seen = []
    subject = is_subject(room)
    deadline = time.monotonic() + WAIT
    while True:
        el = c.recv(max(deadline - time.monotonic(), 0.01))
        seen.append(el)
        assert not (el.tag == PRESENCE_TAG and el.get("type") == "error"), dump(el)
        if subject(el):
            return seen


def history_of(seen, room):
    """The history messages among what `enter` returned: (body, delay)."""
    out = []
    for el in seen:
        if el.tag == MESSAGE_TAG and el.find(q(CLIENT, "body")) is not None:
            assert bare(el.get("from")) == room and el.get("type") == "groupchat", dump(el)
            out.append((el.findtext(q(CLIENT, "body")), el.find(q(NS_DELAY, "delay"))))
    return out


def bodies(seen, room):
    return [b for b, _ in history_of(seen, room)]


def room_query(c, room, inner="", flip=False):
    """A MAM query to the room; returns a Page (results from the room, to the asker)."""
    qid = new_id("q")
    c.send("<iq type='set' id=%s to=%s><query xmlns='%s' queryid=%s>%s%s</query></iq>"
           % (quoteattr(qid), quoteattr(room), NS_MAM, quoteattr(qid), inner,
              "<flip-page/>" if flip else ""))
    res = c.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == qid, WAIT, "query answer")
    msgs = c.im_take(lambda e: e.tag == MESSAGE_TAG and e.find(q(NS_MAM, "result")) is not None
                     and e.find(q(NS_MAM, "result")).get("queryid") == qid)
    if res.get("type") != "result":
        return res
    results = []
    for m in msgs:
        assert m.get("from") == room and m.get("to") == c.jid, dump(m)
        r = m.find(q(NS_MAM, "result"))
        fwd = r.find(q(NS_FWD, "forwarded"))
        inner_msg = fwd.find(q(CLIENT, "message"))
        delay = fwd.find(q(NS_DELAY, "delay"))
        assert inner_msg is not None and delay is not None, dump(m)
        results.append((r.get("id"), inner_msg, delay.get("stamp")))
    return Page(res, results)


def stamp(s):
    return datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


# ------------------------------------------------------------------ history on join

def test_history_comes_after_presences_and_before_the_subject_with_delays(muc_user):
    (_, a), (_, b) = muc_user("ha"), muc_user("hb")
    room = new_room()
    create(a, room, "alice")
    t = tag()
    sent = ["%s one" % t, "%s two" % t, "%s three" % t]
    for text in sent:
        say(a, room, text)
    a.send("<message to='%s' type='groupchat'><subject>Topic %s</subject></message>" % (room, t))
    a.im_wait(is_subject(room), WAIT, "subject change")
    seen = enter(b, room, "bob")
    kinds = ["p" if e.tag == PRESENCE_TAG else "s" if is_subject(room)(e) else "m" for e in seen]
    # 7.2.15/7.2.16: presences (alice's, then one's own), then history, then the subject.
    assert kinds == ["p", "p", "m", "m", "m", "s"], [dump(e) for e in seen]
    assert 110 in codes(seen[1])
    hist = history_of(seen, room)
    assert [b_ for b_, _ in hist] == sent
    for (_, delay), m in zip(hist, [e for e in seen if e.tag == MESSAGE_TAG]):
        # A <delay/> from the room itself, stamped when the room got it.
        assert delay is not None and delay.get("from") == room, dump(m)
        assert abs(stamp(delay.get("stamp")) - datetime.now(timezone.utc)) < timedelta(minutes=5)
        assert m.get("from") == room + "/alice" and m.get("to") == b.jid
        assert room_sid(m, room)
    # The subject change itself is not replayed as history: it is the last element.
    assert seen[-1].findtext(q(CLIENT, "subject")) == "Topic %s" % t


def test_maxstanzas_and_maxchars(muc_user):
    (_, a), (_, b) = muc_user("hs"), muc_user("hc")
    room = new_room()
    create(a, room, "alice")
    t = tag()
    long_text = "%s long %s" % (t, "x" * 3000)
    for text in [long_text, "%s a" % t, "%s b" % t, "%s c" % t]:
        say(a, room, text)
    assert bodies(enter(b, room, "bob", "maxstanzas='2'"), room) == ["%s b" % t, "%s c" % t]
    b.send("<presence to='%s/bob' type='unavailable'/>" % room)
    b.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable", WAIT, "left")
    assert bodies(enter(b, room, "bob2", "maxstanzas='0'"), room) == []
    b.send("<presence to='%s/bob2' type='unavailable'/>" % room)
    b.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable", WAIT, "left")
    # maxchars counts whole stanzas, newest first: the 3 KB message does not fit in 2000,
    # the three short ones do; 0 gives nothing.
    assert bodies(enter(b, room, "bob3", "maxchars='2000'"), room) == [
        "%s a" % t, "%s b" % t, "%s c" % t]
    c = muc_user("hd")[1]
    assert bodies(enter(c, room, "carol", "maxchars='0'"), room) == []
    d = muc_user("he")[1]
    assert bodies(enter(d, room, "dave", "maxchars='100000'"), room)[0] == long_text


def test_seconds_and_since(muc_user):
    (_, a), (_, b) = muc_user("hx"), muc_user("hy")
    room = new_room()
    create(a, room, "alice")
    t = tag()
    say(a, room, "%s old" % t)
    time.sleep(2.2)
    cut = datetime.now(timezone.utc)
    time.sleep(0.05)
    say(a, room, "%s new" % t)
    assert bodies(enter(b, room, "bob", "seconds='2'"), room) == ["%s new" % t]
    c = muc_user("hz")[1]
    since = cut.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert bodies(enter(c, room, "carol", "since='%s'" % since), room) == ["%s new" % t]
    d = muc_user("hw")[1]
    assert bodies(enter(d, room, "dave", "since='2000-01-01T00:00:00Z'"), room) == [
        "%s old" % t, "%s new" % t]


def test_history_bounded_by_the_room_history_length(muc_user):
    (_, a), (_, b) = muc_user("hl"), muc_user("hm")
    room = new_room()
    create(a, room, "alice", {"muc#maxhistoryfetch": "2"})
    t = tag()
    for i in range(4):
        say(a, room, "%s %d" % (t, i))
    assert bodies(enter(b, room, "bob", "maxstanzas='10'"), room) == ["%s 2" % t, "%s 3" % t]


def test_room_without_archiving_gives_history_but_no_archive(muc_user):
    """Archiving off (muc#roomconfig_enablearchiving) turns the XEP-0313 archive off, not
    history on join: a newcomer still gets the last messages, a query is refused."""
    (_, a), (_, b) = muc_user("na"), muc_user("nb")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_enablearchiving": "0"})
    t = tag()
    say(a, room, "%s kept for history" % t)
    assert bodies(enter(b, room, "bob", "maxstanzas='5'"), room) == ["%s kept for history" % t]
    res = room_query(b, room)
    assert_error(res, "service-unavailable")


# ------------------------------------------------------------------ stanza-ids and the archive

def test_reflected_stanza_id_is_the_archive_id(muc_user):
    (_, a), (_, b) = muc_user("sa"), muc_user("sb")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    t = tag()
    mine = say(a, room, "%s hello" % t)
    theirs = b.im_wait(groupchat_body(room, "%s hello" % t), WAIT, "message to bob")
    sid = room_sid(mine, room)
    assert room_sid(theirs, room) == sid
    page = room_query(b, room)
    assert isinstance(page, Page), dump(page)
    assert page.ids == [sid] and page.bodies == ["%s hello" % t]
    fwd = page.results[0][1]
    assert fwd.get("from") == room + "/alice" and fwd.get("type") == "groupchat"
    assert page.complete


def test_forged_stanza_ids_are_removed(muc_user):
    (_, a), (_, b) = muc_user("fa"), muc_user("fb")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    t = tag()
    forged = ("<stanza-id xmlns='%s' by='%s' id='forged1'/><stanza-id xmlns='%s' by='%s' "
              "id='forged2'/><stanza-id xmlns='%s' by='someone@else.example' id='theirs'/>"
              % (NS_SID, room, NS_SID, room.upper(), NS_SID))
    say(a, room, "%s forged" % t, forged)
    got = b.im_wait(groupchat_body(room, "%s forged" % t), WAIT, "message to bob")
    ids = {s.get("id") for s in got.findall(q(NS_SID, "stanza-id"))}
    assert "forged1" not in ids and "forged2" not in ids, dump(got)
    assert "theirs" in ids, "a stanza-id by another entity is not the room's to remove"
    assert room_query(b, room).ids == [room_sid(got, room)]


def test_paging_with_rsm_and_flip_page(muc_user):
    (_, a), (_, b) = muc_user("pa"), muc_user("pb")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    t = tag()
    texts = ["%s %d" % (t, i) for i in range(7)]
    for text in texts:
        say(b, room, text)
    everything = room_query(a, room)
    assert everything.bodies == texts and everything.complete
    # Forward in pages of 3.
    got, after, pages = [], None, 0
    while True:
        page = room_query(a, room, rsm(max_=3, after=after))
        got += page.ids
        pages += 1
        if page.complete:
            break
        assert len(page.ids) == 3
        after = page.last
    assert got == everything.ids and pages == 3
    # Backward from the end: the last page first.
    last = room_query(a, room, rsm(max_=3, before=""))
    assert last.bodies == texts[4:] and not last.complete
    prev = room_query(a, room, rsm(max_=3, before=last.first))
    assert prev.bodies == texts[1:4]
    first = room_query(a, room, rsm(max_=3, before=prev.first))
    assert first.bodies == texts[:1] and first.complete
    # flip-page: the same page in the other order.
    assert room_query(a, room, rsm(max_=3, before=""), flip=True).bodies == texts[4:][::-1]
    # An id that is not in this room's archive.
    assert_error(room_query(a, room, rsm(after="1-0")), "item-not-found")


def test_with_start_end_form_and_metadata(muc_user):
    (_, a), (_, b) = muc_user("wa"), muc_user("wb")
    room = new_room()
    create(a, room, "alice")
    join(b, room, "bob")
    t = tag()
    s1 = room_sid(say(a, room, "%s a1" % t), room)
    say(b, room, "%s b1" % t)
    s3 = room_sid(say(a, room, "%s a2" % t), room)
    assert room_query(b, room, form(**{"with": room + "/alice"})).bodies == [
        "%s a1" % t, "%s a2" % t]
    assert room_query(b, room, form(**{"with": room + "/bob"})).bodies == ["%s b1" % t]
    assert room_query(b, room, form(**{"with": room})).bodies == [
        "%s a1" % t, "%s b1" % t, "%s a2" % t]
    assert room_query(b, room, form(after_id=s1)).bodies == ["%s b1" % t, "%s a2" % t]
    assert room_query(b, room, form(before_id=s3)).bodies == ["%s a1" % t, "%s b1" % t]
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert room_query(b, room, form(start=future)).ids == []
    assert len(room_query(b, room, form(end=future)).ids) == 3
    assert_error(room_query(b, room, form(start="yesterday")), "bad-request")
    assert_error(room_query(b, room, form(lunch="1")), "bad-request")
    res = b.im_iq("get", "<query xmlns='%s'/>" % NS_MAM, to=room)
    assert res.get("type") == "result"
    fields = [f.get("var") for f in res.iter(q("jabber:x:data", "field"))]
    assert {"FORM_TYPE", "with", "start", "end", "before-id", "after-id"} <= set(fields)
    meta = b.im_iq("get", "<metadata xmlns='%s'/>" % NS_MAM, to=room)
    assert meta.get("type") == "result", dump(meta)
    md = meta.find(q(NS_MAM, "metadata"))
    assert md.find(q(NS_MAM, "start")).get("id") == s1
    assert md.find(q(NS_MAM, "end")).get("id") == s3
    # The room says it keeps an archive and stamps ids.
    info = b.im_iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=room)
    feats = {f.get("var") for f in info.iter(q("http://jabber.org/protocol/disco#info", "feature"))}
    assert {NS_MAM, NS_SID} <= feats


def test_who_may_read_a_members_only_room_archive(muc_user):
    (ua, a), (ub, b), (uc, c) = muc_user("ma"), muc_user("mb"), muc_user("mc")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_membersonly": "1"})
    t = tag()
    say(a, room, "%s secret" % t)
    # Not an occupant, not a member: refused, and nothing of the archive arrives.
    res = room_query(c, room)
    assert_error(res, "forbidden")
    assert c.im_take(lambda e: e.tag == MESSAGE_TAG) == []
    # A member who is not in the room may read it.
    r = a.im_iq("set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item jid='%s' "
                "affiliation='member'/></query>" % bare(b.jid), to=room)
    assert r.get("type") == "result", dump(r)
    assert room_query(b, room).bodies == ["%s secret" % t]


def test_destroyed_room_archive_is_gone(muc_user, stack):
    (_, a), (_, b) = muc_user("da"), muc_user("db")
    room = new_room()
    create(a, room, "alice", {"muc#roomconfig_persistentroom": "1"})
    t = tag()
    say(a, room, "%s before" % t)
    key = "%smucmam:{%s}" % (REDIS_PREFIX, room)
    if not getattr(stack, "remote", False):
        assert int(stack.redis.command("EXISTS", key)) == 1
    res = a.im_iq("set", "<query xmlns='%s'><destroy/></query>" % NS_OWNER, to=room)
    assert res.get("type") == "result", dump(res)
    if not getattr(stack, "remote", False):
        deadline = time.monotonic() + WAIT
        while int(stack.redis.command("EXISTS", key)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(stack.redis.command("EXISTS", key)) == 0
    # A new room of the same name starts empty: no history, no archive.
    create(b, room, "bob")
    assert room_query(b, room).ids == []
    c = muc_user("dc")[1]
    assert bodies(enter(c, room, "carol"), room) == []


def test_room_cap_and_expiry(stack):
    """muc_archive_max_messages=3 keeps the newest three; muc_archive_expires_after=2 trims
    older ones by id on the next write."""
    with configured_stack(stack, muc_archive_max_messages=3, muc_archive_expires_after=2) as ps:
        ua, ub = ps.new_user("ca"), ps.new_user("cb")
        cl = []
        try:
            def connect(u, res):
                c = XMPPClient(ps.frontend.port, cafile=stack.cafile, timeout=5)
                cl.append(c)
                c.login(u.localpart, u.password, resource=res)
                c.send("<presence/>")
                return c
            a, b = connect(ua, "a"), connect(ub, "b")
            room = new_room()
            create(a, room, "alice")
            t = tag()
            for i in range(5):
                say(a, room, "%s %d" % (t, i))
            assert room_query(a, room).bodies == ["%s %d" % (t, i) for i in (2, 3, 4)]
            assert bodies(enter(b, room, "bob", "maxstanzas='10'"), room) == [
                "%s %d" % (t, i) for i in (2, 3, 4)]
            time.sleep(2.3)
            say(a, room, "%s late" % t)
            assert room_query(a, room).bodies == ["%s late" % t]
        finally:
            for c in cl:
                c.close()

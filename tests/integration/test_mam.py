"""The message archive: XEP-0313 (urn:xmpp:mam:2 and #extended) with XEP-0359 stanza ids
and XEP-0059 paging. What is archived (and what is not), the stamps on delivered copies,
carbons and offline messages, every query filter, paging, metadata, preferences, expiry,
account deletion, and bad input with its named error."""

import time
import uuid
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

import pytest

from conftest import REDIS_PREFIX
from test_im_helpers import (QUIET, WAIT, assert_error, bare, befriend, configured_stack,
                             online)
from xmpp_client import IQ_TAG, MESSAGE_TAG, dump, new_id

NS = "{jabber:client}"
NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FWD = "urn:xmpp:forward:0"
NS_CARBONS = "urn:xmpp:carbons:2"


# ------------------------------------------------------------------ helpers

def form(**fields):
    """A MAM query form; a list value gives several <value/>s (ids)."""
    out = ["<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
           "<value>%s</value></field>" % NS_MAM]
    for var, val in fields.items():
        var = var.replace("_", "-")
        vals = val if isinstance(val, (list, tuple)) else [val]
        out.append("<field var=%s>%s</field>" % (quoteattr(var), "".join(
            "<value>%s</value>" % escape(v) for v in vals)))
    out.append("</x>")
    return "".join(out)


def rsm(max_=None, after=None, before=None):
    parts = []
    if max_ is not None:
        parts.append("<max>%d</max>" % max_)
    if after is not None:
        parts.append("<after>%s</after>" % escape(after))
    if before is not None:
        parts.append("<before>%s</before>" % escape(before) if before else "<before/>")
    return "<set xmlns='%s'>%s</set>" % (NS_RSM, "".join(parts))


class Page:
    def __init__(self, iq, results):
        self.iq = iq
        self.results = results  # [(archive id, forwarded <message/>, delay stamp)]
        fin = iq.find("{%s}fin" % NS_MAM)
        self.fin = fin
        self.complete = fin is not None and fin.get("complete") in ("true", "1")
        s = fin.find("{%s}set" % NS_RSM) if fin is not None else None
        self.first = s.findtext("{%s}first" % NS_RSM) if s is not None else None
        self.last = s.findtext("{%s}last" % NS_RSM) if s is not None else None

    @property
    def ids(self):
        return [i for i, _, _ in self.results]

    @property
    def bodies(self):
        return [m.findtext(NS + "body") for _, m, _ in self.results]


def query_raw(c, payload_inner, flip=False, to=None):
    """Sends a MAM query; returns (iq response, [result messages]) in arrival order."""
    qid = new_id("q")
    c.send("<iq type='set' id=%s%s><query xmlns='%s' queryid=%s>%s%s</query></iq>"
           % (quoteattr(qid), "" if to is None else " to=%s" % quoteattr(to), NS_MAM,
              quoteattr(qid), payload_inner, "<flip-page/>" if flip else ""))
    res = c.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == qid, WAIT, "query answer")
    got = c.im_take(lambda e: e.tag == MESSAGE_TAG and e.find("{%s}result" % NS_MAM) is not None
                    and e.find("{%s}result" % NS_MAM).get("queryid") == qid)
    return res, got


def query(c, flip=False, **kw):
    """A query with form fields (kw: with_, start, end, before_id, after_id, ids) and RSM
    (max_, after, before); asserts success; returns a Page."""
    fields = {k.rstrip("_"): v for k, v in kw.items()
              if k in ("with_", "start", "end", "before_id", "after_id", "ids")}
    page = {k: v for k, v in kw.items() if k in ("max_", "after", "before")}
    inner = (form(**fields) if fields else "") + (rsm(**page) if page else "")
    res, msgs = query_raw(c, inner, flip)
    assert res.get("type") == "result", "query failed: %s" % dump(res)
    results = []
    for m in msgs:
        assert bare(m.get("to") or "") == bare(c.jid) and m.get("to") == c.jid, dump(m)
        assert m.get("from") in (None, bare(c.jid)), "result not from the archive: %s" % dump(m)
        r = m.find("{%s}result" % NS_MAM)
        fwd = r.find("{%s}forwarded" % NS_FWD)
        assert fwd is not None, dump(m)
        inner_msg = fwd.find(NS + "message")
        delay = fwd.find("{urn:xmpp:delay}delay")
        assert inner_msg is not None and delay is not None, dump(m)
        results.append((r.get("id"), inner_msg, delay.get("stamp")))
    return Page(res, results)


def stanza_ids(m, by=None):
    return [s.get("id") for s in m.findall("{%s}stanza-id" % NS_SID)
            if by is None or s.get("by") == by]


def send(c, to, inner, type_="chat", mid=None):
    mid = mid or new_id("m")
    c.send("<message to=%s type=%s id=%s>%s</message>"
           % (quoteattr(to), quoteattr(type_), quoteattr(mid), inner))
    return mid


def body(text):
    return "<body>%s</body>" % escape(text)


def got_message(c, mid, timeout=WAIT):
    return c.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("id") == mid
                     and e.get("type") != "error", timeout, "message %s" % mid)


def with_bodies(c, other):
    return query(c, with_=other).bodies


def tag():
    return uuid.uuid4().hex[:6]


# ------------------------------------------------------------------ archiving rules

def test_what_is_archived_and_what_is_not(login, new_user):
    ua, ub = new_user("mama"), new_user("mamb")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    t = tag()
    wanted = [
        ("chat body", "chat", body("hello " + t)),
        ("normal body", "normal", body("normal " + t)),
        ("correction", "chat", body("fixed " + t) +
         "<replace xmlns='urn:xmpp:message-correct:0' id='x1'/>"),
        ("retraction", "chat", "<retract xmlns='urn:xmpp:message-retract:1' id='x1'/>"
         "<fallback xmlns='urn:xmpp:fallback:0'/>"),
        ("retraction v0", "chat", "<apply-to xmlns='urn:xmpp:fasten:0' id='x1'>"
         "<retract xmlns='urn:xmpp:message-retract:0'/></apply-to>"),
        ("reaction", "chat", "<reactions xmlns='urn:xmpp:reactions:0' id='x1'>"
         "<reaction>\U0001F44D</reaction></reactions>"),
        ("omemo", "chat", "<encrypted xmlns='eu.siacs.conversations.axolotl'>"
         "<header sid='1'><iv>AAAA</iv></header><payload>QUJD</payload></encrypted>"),
        ("openpgp", "chat", "<openpgp xmlns='urn:xmpp:openpgp:0'>QUJD</openpgp>"),
    ]
    unwanted = [
        ("chat state", "chat", "<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
        ("receipt", "chat", "<received xmlns='urn:xmpp:receipts' id='x1'/>"),
        ("marker", "chat", "<displayed xmlns='urn:xmpp:chat-markers:0' id='x1'/>"),
        ("headline", "headline", body("headline " + t)),
        ("no-store hint", "chat", body("secret " + t) + "<no-store xmlns='urn:xmpp:hints'/>"),
    ]
    sent = {}
    for name, type_, inner in wanted + unwanted:
        sent[name] = send(a, b.jid, inner, type_)
    a.im_sync()
    for name, _, _ in wanted + unwanted:
        got_message(b, sent[name])
    pa, pb = query(a, with_=bare(b.jid)), query(b, with_=bare(a.jid))
    want_ids = [sent[n] for n, _, _ in wanted]
    for p, who in ((pa, "sender"), (pb, "recipient")):
        ids = [m.get("id") for _, m, _ in p.results]
        assert ids == want_ids, "%s archive holds %s, expected %s" % (
            who, ids, [n for n, _, _ in wanted])
        assert p.complete


def test_groupchat_and_error_messages_are_not_archived(login, new_user):
    ua, ub = new_user("mamg"), new_user("mamh")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    t = tag()
    send(a, b.jid, body("gc " + t), "groupchat")
    send(a, b.jid, body("err " + t) + "<error type='cancel'><item-not-found "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", "error")
    mid = send(a, b.jid, body("real " + t))
    got_message(b, mid)
    a.im_sync()
    assert query(a, with_=bare(b.jid)).bodies == ["real " + t]
    assert query(b, with_=bare(a.jid)).bodies == ["real " + t]


# ------------------------------------------------------------------ stanza ids

def test_stanza_ids_on_delivery_and_carbons_and_one_entry_per_message(login, new_user):
    ua, ub = new_user("mams"), new_user("mamt")
    a1, a2 = online(login, ua, "a1"), online(login, ua, "a2")
    b1, b2 = online(login, ub, "b1"), online(login, ub, "b2")
    for c in (a1, a2, b1, b2):
        assert c.im_iq("set", "<enable xmlns='%s'/>" % NS_CARBONS).get("type") == "result"
    A, B = bare(a1.jid), bare(b1.jid)
    t = tag()
    mid = send(a1, b1.jid, body("stamped " + t) +
               "<origin-id xmlns='%s' id='origin-%s'/>" % (NS_SID, t) +
               "<stanza-id xmlns='%s' by='%s' id='forged-b'/>" % (NS_SID, B) +
               "<stanza-id xmlns='%s' by='%s' id='forged-a'/>" % (NS_SID, A) +
               "<stanza-id xmlns='%s' by='muc.example.net' id='foreign'/>" % NS_SID)
    delivered = got_message(b1, mid)
    assert "forged-b" not in stanza_ids(delivered) and "forged-a" not in stanza_ids(delivered), \
        "forged stanza-id kept: %s" % dump(delivered)
    assert stanza_ids(delivered, "muc.example.net") == ["foreign"], dump(delivered)
    origin = delivered.find("{%s}origin-id" % NS_SID)
    assert origin is not None and origin.get("id") == "origin-" + t, dump(delivered)
    b_ids = stanza_ids(delivered, B)
    assert len(b_ids) == 1, "one stanza-id by the recipient: %s" % dump(delivered)

    def carbon(c, what):
        def pred(e):
            w = e.find("{%s}%s" % (NS_CARBONS, what))
            if e.tag != MESSAGE_TAG or w is None:
                return False
            m = w.find("{%s}forwarded/%smessage" % (NS_FWD, NS))
            return m is not None and m.get("id") == mid
        e = c.im_wait(pred, WAIT, "%s carbon on %s" % (what, c.jid))
        return e.find("{%s}%s/{%s}forwarded/%smessage" % (NS_CARBONS, what, NS_FWD, NS))

    sent_copy = carbon(a2, "sent")
    a_ids = stanza_ids(sent_copy, A)
    assert len(a_ids) == 1, "the sent carbon carries the sender's stanza-id: %s" % dump(sent_copy)
    assert "forged-a" not in stanza_ids(sent_copy)
    received_copy = carbon(b2, "received")
    assert stanza_ids(received_copy, B) == b_ids, dump(received_copy)

    # One archive entry each, whose id is the stamp.
    pa, pb = query(a1, with_=B), query(b2, with_=A)
    assert pa.ids == a_ids and pb.ids == b_ids, (pa.ids, a_ids, pb.ids, b_ids)
    stored = pb.results[0][1]
    assert stored.findtext(NS + "body") == "stamped " + t
    assert stored.get("from") == a1.jid and stored.get("to") == b1.jid, dump(stored)
    assert stored.find("{%s}origin-id" % NS_SID) is not None
    assert "forged-b" not in stanza_ids(stored)
    # Every device of both sees the same archive.
    assert query(a2, with_=B).ids == a_ids and query(b1, with_=A).ids == b_ids


def test_offline_message_is_archived_and_stamped(login, new_user):
    ua, ub = new_user("mamo"), new_user("mamp")
    a = online(login, ua, "a")
    t = tag()
    mid = send(a, ub.jid, body("while away " + t))
    a.im_sync()
    a.im_expect_none(lambda e: e.get("type") == "error", QUIET, "error for a stored message")
    b = online(login, ub, "b")
    m = got_message(b, mid)
    ids = stanza_ids(m, ub.jid)
    assert len(ids) == 1, "offline message without the recipient's stanza-id: %s" % dump(m)
    p = query(b, with_=bare(a.jid))
    assert p.ids == ids and p.bodies == ["while away " + t]
    assert query(a, with_=ub.jid).bodies == ["while away " + t]


def test_message_to_a_missing_account_is_not_archived_for_it(login, new_user, stack):
    ua = new_user("mamx")
    a = online(login, ua, "a")
    ghost = "ghost%s@localhost" % tag()
    send(a, ghost, body("nobody"))
    a.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("type") == "error", WAIT, "bounce")
    assert stack.redis.command("EXISTS", "%smam:{%s}" % (REDIS_PREFIX, ghost)) == 0


# ------------------------------------------------------------------ queries

@pytest.fixture
def conversation(login, new_user):
    """a has sent b six messages and c two, in order; returns (a, b, c, sent) with
    sent = [(body, recipient full JID, archive id in a's archive)]. The clients are bound
    but send nothing else (no round trip to themselves, which would be archived too)."""
    ua, ub, uc = new_user("mamq"), new_user("mamr"), new_user("mamc")
    a, b, c = (login(u, resource=r, priority=False) for u, r in ((ua, "a"), (ub, "b"), (uc, "c")))
    t = tag()
    sent = []
    for i in range(8):
        to = c if i in (2, 5) else b
        mid = send(a, to.jid, body("m%d %s" % (i, t)))
        m = got_message(to, mid)
        sent.append((m.findtext(NS + "body"), to.jid))
        if i == 3:
            time.sleep(0.05)  # so start/end can fall between two messages
    p = query(a)
    assert p.bodies == [x[0] for x in sent] and p.complete, p.bodies
    sent = [(bd, to, i) for (bd, to), i in zip(sent, p.ids)]
    return a, b, c, sent


def test_query_everything_in_order(conversation):
    a, b, c, sent = conversation
    p = query(a)
    assert p.bodies == [s[0] for s in sent] and p.complete
    assert p.first == sent[0][2] and p.last == sent[-1][2]
    # The delay stamps follow the archive order.
    stamps = [s for _, _, s in p.results]
    assert stamps == sorted(stamps)


def test_with_filter_bare_and_full(conversation):
    a, b, c, sent = conversation
    to_b = [s[0] for s in sent if s[1] == b.jid]
    assert query(a, with_=bare(b.jid)).bodies == to_b
    assert query(a, with_=b.jid).bodies == to_b  # sent to that full JID
    assert query(a, with_=bare(b.jid) + "/elsewhere").bodies == []
    assert query(a, with_=bare(c.jid)).bodies == [s[0] for s in sent if s[1] == c.jid]
    # The recipient's side: with the sender's full JID (its resource) and bare JID.
    assert query(b, with_=a.jid).bodies == to_b
    assert query(b, with_=bare(a.jid)).bodies == to_b


def ms_of(archive_id):
    return int(archive_id.split("-")[0])


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_start_and_end(conversation):
    a, b, c, sent = conversation
    split = ms_of(sent[4][2])
    assert split > ms_of(sent[3][2]), "the fixture leaves a gap after the fourth message"
    assert query(a, start=iso(split)).bodies == [s[0] for s in sent[4:]]
    assert query(a, end=iso(split - 1)).bodies == [s[0] for s in sent[:4]]
    # Another time zone, same instant.
    dt = datetime.fromtimestamp(split / 1000, timezone.utc).astimezone(timezone(timedelta(hours=2)))
    stamp = dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"
    assert query(a, start=stamp).bodies == [s[0] for s in sent[4:]]
    future = iso(int(time.time() * 1000) + 3600_000)
    assert query(a, start=future).bodies == [] and query(a, start=future).complete


def test_before_id_after_id_and_ids(conversation):
    a, b, c, sent = conversation
    ids = [s[2] for s in sent]
    assert query(a, after_id=ids[2]).bodies == [s[0] for s in sent[3:]]
    assert query(a, before_id=ids[2]).bodies == [s[0] for s in sent[:2]]
    assert query(a, after_id=ids[1], before_id=ids[5]).bodies == [s[0] for s in sent[2:5]]
    # #extended ids: in archive order whatever the order asked.
    assert query(a, ids=[ids[6], ids[1], ids[3]]).bodies == [sent[1][0], sent[3][0], sent[6][0]]


def test_paging_forward_backward_and_complete(conversation):
    a, b, c, sent = conversation
    bodies = [s[0] for s in sent]
    p1 = query(a, max_=3)
    assert p1.bodies == bodies[:3] and not p1.complete
    p2 = query(a, max_=3, after=p1.last)
    assert p2.bodies == bodies[3:6] and not p2.complete
    p3 = query(a, max_=3, after=p2.last)
    assert p3.bodies == bodies[6:] and p3.complete
    # Backwards from the end: an empty <before/> is the last page.
    q1 = query(a, max_=3, before="")
    assert q1.bodies == bodies[5:] and not q1.complete
    q2 = query(a, max_=3, before=q1.first)
    assert q2.bodies == bodies[2:5] and not q2.complete
    q3 = query(a, max_=3, before=q2.first)
    assert q3.bodies == bodies[:2] and q3.complete
    # max 0: nothing, and not complete while there is something.
    z = query(a, max_=0)
    assert z.bodies == [] and not z.complete
    # ... and claims no count of 0 for an archive that holds messages (XEP-0059 2.7).
    zset = z.fin.find("{%s}set" % NS_RSM)
    assert zset is None or zset.findtext("{%s}count" % NS_RSM) != "0", dump(z.iq)
    # With a filter, paging stays within it.
    to_b = [s[0] for s in sent if s[1] == b.jid]
    w1 = query(a, with_=bare(b.jid), max_=4)
    w2 = query(a, with_=bare(b.jid), max_=4, after=w1.last)
    assert w1.bodies + w2.bodies == to_b and w2.complete and not w1.complete


def test_flip_page(conversation):
    a, b, c, sent = conversation
    bodies = [s[0] for s in sent]
    p = query(a, max_=3, before="", flip=True)
    assert p.bodies == list(reversed(bodies[5:]))
    assert p.first == sent[7][2] and p.last == sent[5][2]


def test_metadata(login, new_user):
    ua, ub = new_user("mamm"), new_user("mamn")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    # im_sync's own messages are archived too: start from what the archive holds.
    res = b.im_iq("get", "<metadata xmlns='%s'/>" % NS_MAM)
    assert res.get("type") == "result", dump(res)
    first_before = res.find("{%s}metadata/{%s}start" % (NS_MAM, NS_MAM))
    t = tag()
    ids = []
    for i in range(3):
        m = got_message(b, send(a, b.jid, body("meta %d %s" % (i, t))))
        ids.append(stanza_ids(m, ub.jid)[0])
    res = b.im_iq("get", "<metadata xmlns='%s'/>" % NS_MAM)
    md = res.find("{%s}metadata" % NS_MAM)
    start, end = md.find("{%s}start" % NS_MAM), md.find("{%s}end" % NS_MAM)
    assert end.get("id") == ids[-1], dump(res)
    if first_before is None:
        assert start.get("id") == ids[0], dump(res)
    else:
        assert start.get("id") == first_before.get("id")
    for el in (start, end):
        assert el.get("timestamp", "").endswith("Z"), dump(res)


def test_metadata_of_an_empty_archive(stack):
    with configured_stack(stack) as ps:
        from xmpp_client import XMPPClient
        u = ps.new_user("mame")
        c = XMPPClient(ps.frontend.port, cafile=stack.cafile, timeout=5)
        try:
            c.login(u.localpart, u.password)
            res = c.iq("get", "<metadata xmlns='%s'/>" % NS_MAM)
            md = res.find("{%s}metadata" % NS_MAM)
            assert res.get("type") == "result" and md is not None and len(md) == 0, dump(res)
        finally:
            c.close()


def test_form_discovery_and_disco(login, new_user):
    ua = new_user("mamd")
    a = online(login, ua, "a")
    res = a.im_iq("get", "<query xmlns='%s'/>" % NS_MAM)
    assert res.get("type") == "result", dump(res)
    fields = {f.get("var") for f in res.iter("{jabber:x:data}field")}
    assert {"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"} <= fields
    res = a.im_iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>",
                  to=bare(a.jid))
    feats = {f.get("var") for f in res.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert {NS_MAM, NS_MAM + "#extended", NS_SID} <= feats, feats


# ------------------------------------------------------------------ bad input

def test_bad_queries_get_their_named_errors(conversation, new_user, login):
    a, b, c, sent = conversation
    ids = [s[2] for s in sent]
    cases = [
        ("unknown FORM_TYPE", "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
         "<value>urn:example:other</value></field></x>", "bad-request"),
        ("unknown field", form(colour="blue"), "bad-request"),
        ("bad date", form(start="yesterday"), "bad-request"),
        ("31 February", form(start="2024-02-31T00:00:00Z"), "bad-request"),
        ("bad with", form(**{"with": "@@"}), "bad-request"),
        ("bad max", rsm() .replace("</set>", "<max>lots</max></set>"), "bad-request"),
        ("unknown RSM after", rsm(after="1-0"), "item-not-found"),
        ("unknown RSM before", rsm(before="17000000-3"), "item-not-found"),
        ("garbage RSM after", rsm(after="not-an-id"), "item-not-found"),
        ("unknown after-id", form(after_id="1-1"), "item-not-found"),
        ("unknown before-id", form(before_id="1-1"), "item-not-found"),
        ("too many ids", form(ids=[ids[0]] * 101), "policy-violation"),
    ]
    for name, inner, cond in cases:
        res, msgs = query_raw(a, inner)
        assert res.get("type") == "error", "%s: %s" % (name, dump(res))
        assert_error(res, cond)
        assert msgs == [], "%s: results sent with an error" % name
    # Another user's archive.
    res, msgs = query_raw(a, "", to=bare(b.jid))
    assert_error(res, "forbidden")
    assert msgs == []
    res = a.im_iq("get", "<metadata xmlns='%s'/>" % NS_MAM, to=bare(b.jid))
    assert_error(res, "forbidden")
    # Nothing of it was stored.
    assert query(a).bodies == [s[0] for s in sent]


# ------------------------------------------------------------------ preferences

def prefs_set(c, default, always=(), never=()):
    def lst(name, jids):
        return "<%s>%s</%s>" % (name, "".join("<jid>%s</jid>" % escape(j) for j in jids), name)
    res = c.im_iq("set", "<prefs xmlns='%s' default='%s'>%s%s</prefs>"
                  % (NS_MAM, default, lst("always", always), lst("never", never)))
    assert res.get("type") == "result", dump(res)
    return res


def prefs_get(c):
    res = c.im_iq("get", "<prefs xmlns='%s'/>" % NS_MAM)
    assert res.get("type") == "result", dump(res)
    p = res.find("{%s}prefs" % NS_MAM)
    lists = {n: sorted(j.text for j in p.iter("{%s}jid" % NS_MAM)
                       if j in list(p.find("{%s}%s" % (NS_MAM, n)) or []))
             for n in ("always", "never")}
    return p.get("default"), lists["always"], lists["never"]


def test_prefs_get_set_and_their_effect(login, new_user):
    ua, ub, uc, ud = new_user("mpa"), new_user("mpb"), new_user("mpc"), new_user("mpd")
    a, b, c, d = (online(login, u, r) for u, r in ((ua, "a"), (ub, "b"), (uc, "c"), (ud, "d")))
    assert prefs_get(a) == ("always", [], [])
    befriend(a, c)
    t = tag()

    # never with an always list: only c is archived.
    prefs_set(a, "never", always=[bare(c.jid)])
    assert prefs_get(a) == ("never", [bare(c.jid)], [])
    for x in (b, c):
        got_message(x, send(a, x.jid, body("never-mode %s" % t)))
    got_message(a, send(b, a.jid, body("never-mode in %s" % t)))
    assert query(a, with_=bare(b.jid)).bodies == []
    assert query(a, with_=bare(c.jid)).bodies == ["never-mode %s" % t]
    # The other side's archive does not depend on a's preferences.
    assert query(b, with_=bare(a.jid)).bodies == ["never-mode %s" % t, "never-mode in %s" % t]
    # What a does not archive is not stamped by a.
    m = got_message(a, send(b, a.jid, body("unstamped " + t)))
    assert stanza_ids(m, bare(a.jid)) == [], dump(m)

    # roster: c (a contact) yes, d no.
    prefs_set(a, "roster", never=[bare(b.jid)])
    assert prefs_get(a) == ("roster", [], [bare(b.jid)])
    for x in (c, d, b):
        got_message(x, send(a, x.jid, body("roster-mode %s" % t)))
    assert query(a, with_=bare(c.jid)).bodies == ["never-mode %s" % t, "roster-mode %s" % t]
    assert query(a, with_=bare(d.jid)).bodies == []
    assert query(a, with_=bare(b.jid)).bodies == []

    # always, with a never list (a full JID blocks only that resource).
    prefs_set(a, "always", never=[d.jid])
    got_message(d, send(a, d.jid, body("always-mode to d " + t)))
    got_message(b, send(a, b.jid, body("always-mode " + t)))
    assert query(a, with_=bare(d.jid)).bodies == []
    assert query(a, with_=bare(b.jid)).bodies == ["always-mode " + t]

    bad = a.im_iq("set", "<prefs xmlns='%s' default='sometimes'/>" % NS_MAM)
    assert_error(bad, "bad-request")
    assert prefs_get(a)[0] == "always"


def test_prefs_of_an_offline_recipient_are_kept(login, new_user):
    """The recipient is not online: its preferences are read in Redis when archiving."""
    ua, ub = new_user("mpo"), new_user("mpq")
    b = online(login, ub, "b")
    prefs_set(b, "never")
    b.end_stream()
    a = online(login, ua, "a")
    t = tag()
    send(a, ub.jid, body("to a never-archiver " + t))
    a.im_sync()
    b = online(login, ub, "b2")
    b.im_wait(lambda e: e.tag == MESSAGE_TAG
              and e.findtext(NS + "body") == "to a never-archiver " + t, WAIT, "offline message")
    assert query(b, with_=bare(a.jid)).bodies == []
    assert query(a, with_=ub.jid).bodies == ["to a never-archiver " + t]


# ------------------------------------------------------------------ expiry, deletion

def test_old_messages_expire_without_a_scan(stack):
    """archive_expires_after=3: a message older than that leaves the archive when the next
    one is written (trimmed by id), and the keys expire with the last message."""
    with configured_stack(stack, archive_expires_after=3) as ps:
        from xmpp_client import XMPPClient
        ua, ub = ps.new_user("mxa"), ps.new_user("mxb")
        cl = []
        try:
            def connect(u, res):
                c = XMPPClient(ps.frontend.port, cafile=stack.cafile, timeout=5)
                cl.append(c)
                c.login(u.localpart, u.password, resource=res)
                return c
            a, b = connect(ua, "a"), connect(ub, "b")
            r = ps_redis(ps)
            key = "%smam:{%s}" % (REDIS_PREFIX, ub.jid)
            with_key = "%smamwith:{%s}:%s" % (REDIS_PREFIX, ub.jid, ua.jid)
            got_message(b, send(a, b.jid, body("old")))
            assert 0 < int(r("TTL", key)) <= 3, "the archive expires with its last message"
            assert 0 < int(r("TTL", with_key)) <= 3
            time.sleep(1.6)
            got_message(b, send(a, b.jid, body("mid")))
            time.sleep(1.6)  # "old" is now past the expiry, "mid" is not
            got_message(b, send(a, b.jid, body("new")))
            assert query(b, with_=bare(a.jid)).bodies == ["mid", "new"]
            assert query(b).bodies == ["mid", "new"]
            # "old" left the streams themselves, not only the answers.
            assert int(r("XLEN", key)) == 2 and int(r("XLEN", with_key)) == 2
        finally:
            for c in cl:
                c.close()


def ps_redis(ps):
    import subprocess

    def cmd(*args):
        out = subprocess.run(["redis-cli", "-p", str(ps.redis_port)] + list(args),
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    return cmd


def test_account_deletion_removes_the_archive(login, new_user, stack):
    ua, ub = new_user("mdel"), new_user("mdem")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    got_message(b, send(a, b.jid, body("before deletion")))
    prefs_set(a, "always", never=["x@example.net"])
    keys = lambda jid: sorted(k.decode() for k in stack.redis.command(  # noqa: E731
        "KEYS", "%smam*{%s}*" % (REDIS_PREFIX, jid)))
    assert any(":{%s}:" % ua.jid in k for k in keys(ua.jid)), keys(ua.jid)
    assert len(keys(ua.jid)) >= 4, keys(ua.jid)
    res = a.im_iq("set", "<query xmlns='jabber:iq:register'><remove/></query>")
    assert res.get("type") == "result", dump(res)
    deadline = time.monotonic() + WAIT
    while keys(ua.jid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert keys(ua.jid) == []
    # The contact's own archive stays.
    assert query(b, with_=ua.jid).bodies == ["before deletion"]


# ------------------------------------------------------------------ a real client library

def test_slixmpp_reads_the_archive(login, new_user, stack):
    slixmpp = pytest.importorskip("slixmpp")
    import slix_helpers
    from pathlib import Path

    ua, ub = new_user("mslx"), new_user("msly")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    t = tag()
    for i in range(5):
        got_message(b, send(a, b.jid, body("slix %d %s" % (i, t))))

    class C(slixmpp.ClientXMPP):
        def __init__(self):
            super().__init__(ub.jid + "/slix", ub.password, sasl_mech="SCRAM-SHA-256")
            slix_helpers.without_channel_binding(self)
            self.ca_certs = Path(stack.cafile)
            self.register_plugin("xep_0059")
            self.register_plugin("xep_0313")
            self.ready = self.loop.create_future()
            self.add_event_handler("session_start", lambda _e: self.ready.set_result(True))

    async def scenario():
        c = C()
        c.connect(("127.0.0.1", stack.port), force_starttls=True, disable_starttls=False)
        await asyncio.wait_for(c.ready, 15)
        got = []
        async for m in c["xep_0313"].iterate(with_jid=slixmpp.JID(ua.jid), rsm={"max": 2}):
            got.append(m["mam_result"]["forwarded"]["stanza"]["body"])
        fields = await c["xep_0313"].get_fields(timeout=10)  # the iq's form
        c.disconnect()
        return got, fields

    import asyncio
    got, fields = slix_helpers.run(scenario(), 60)
    assert got == ["slix %d %s" % (i, t) for i in range(5)], got
    names = {f.get("var") for f in fields.xml.iter("{jabber:x:data}field")}
    assert {"with", "start", "end"} <= names, names


# ------------------------------------------------------------------ robustness, switch

def test_a_stream_holding_a_later_id_still_archives(login, new_user, stack):
    """Another writer (a second router, a clock stepped back over a restart) left a later
    id in the stream: the message is still archived, under an id Redis picks."""
    ua, ub = new_user("mlat"), new_user("mlau")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    key = "%smam:{%s}" % (REDIS_PREFIX, ub.jid)
    future = "%d-0" % (int(time.time() * 1000) + 3600_000)
    stack.redis.command("XADD", key, future, "with", "x@localhost", "dir", "in", "xml",
                        "<message from='x@localhost' to='%s'><body>from the future</body>"
                        "</message>" % ub.jid)
    got_message(b, send(a, b.jid, body("after the future")))
    deadline = time.monotonic() + WAIT
    while int(stack.redis.command("XLEN", key)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    p = query(b)
    assert "after the future" in p.bodies and "from the future" in p.bodies, p.bodies
    assert p.ids == sorted(p.ids, key=lambda i: tuple(int(x) for x in i.split("-")))


def test_archive_switched_off(stack):
    with configured_stack(stack, mam_enabled="false") as ps:
        from xmpp_client import XMPPClient
        ua, ub = ps.new_user("moff"), ps.new_user("moffb")
        cl = []
        try:
            for u in (ua, ub):
                c = XMPPClient(ps.frontend.port, cafile=stack.cafile, timeout=5)
                cl.append(c)
                c.login(u.localpart, u.password, resource="r")
            a, b = cl
            m = got_message(b, send(a, b.jid, body("unarchived")))
            assert stanza_ids(m) == [], dump(m)
            res, msgs = query_raw(b, "")
            assert_error(res, "service-unavailable")
            res = b.im_iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>",
                          to=bare(b.jid))
            feats = {f.get("var") for f in res.iter(
                "{http://jabber.org/protocol/disco#info}feature")}
            assert NS_MAM not in feats and NS_SID not in feats, feats
        finally:
            for c in cl:
                c.close()


def test_a_message_the_recipient_blocks_is_in_neither_archive(login, new_user):
    ua, ub = new_user("mblk"), new_user("mblm")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    res = b.im_iq("set", "<block xmlns='urn:xmpp:blocking'><item jid='%s'/></block>" % bare(a.jid))
    assert res.get("type") == "result", dump(res)
    send(a, b.jid, body("blocked"))
    a.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("type") == "error", WAIT, "bounce")
    b.im_expect_none(lambda e: e.tag == MESSAGE_TAG and e.findtext(NS + "body") == "blocked",
                     QUIET, "a blocked message")
    assert query(a, with_=bare(b.jid)).bodies == []
    assert query(b, with_=bare(a.jid)).bodies == []


def test_roster_mode_of_an_offline_recipient(login, new_user):
    """'roster' decided in Redis for a recipient the router does not hold: a contact's
    message is archived, a stranger's is not."""
    ua, ub, uc = new_user("mro"), new_user("mrp"), new_user("mrq")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    befriend(a, b)
    prefs_set(b, "roster")
    # The stranger asked for b's presence and got no answer: b keeps a hidden item for it
    # (a pending request, RFC 6121 3.1.3), which is not "in the roster".
    c = online(login, uc, "c")
    c.im_presence(to=ub.jid, type_="subscribe")
    b.im_wait_presence(type_="subscribe", sender=uc.jid, timeout=WAIT)
    b.close()
    # The router has ended b's session when a sees it go; a message routed before that
    # would race the close on b's frontend (TCP without stream management may lose it).
    a.im_wait_presence(type_="unavailable", sender=b.jid, timeout=WAIT)
    t = tag()
    send(a, ub.jid, body("from a contact " + t))
    send(c, ub.jid, body("from a stranger " + t))
    a.im_sync()
    c.im_sync()
    b = online(login, ub, "b2")
    for who in ("contact", "stranger"):
        b.im_wait(lambda e, w=who: e.tag == MESSAGE_TAG
                  and e.findtext(NS + "body") == "from a %s %s" % (w, t), WAIT, who)
    assert query(b, with_=bare(a.jid)).bodies == ["from a contact " + t]
    assert query(b, with_=bare(c.jid)).bodies == []


# ------------------------------------------------------------------ review of #13

def test_a_form_repeating_an_id_field_is_refused(conversation):
    """A query form naming after-id (or before-id) many times is refused with bad-request,
    not read into a fixed table of four (which overflowed the router's stack)."""
    a, b, c, sent = conversation
    inner = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
             "<value>%s</value></field>" % NS_MAM +
             "".join("<field var='after-id'><value>%s</value></field>" % sent[0][2]
                     for _ in range(40)) + "</x>")
    res, msgs = query_raw(a, inner)
    assert_error(res, "bad-request")
    assert msgs == []
    assert query(a).bodies == [s[0] for s in sent]


def test_archive_writes_lost_with_redis_connection_do_not_crash(private_stack):
    """The Redis connection drops while the archive script of a message to an offline
    account is pending: the router logs the loss and keeps serving."""
    from xmpp_client import XMPPClient
    ps = private_stack
    cmd = ps_redis(ps)
    ua, ub = ps.new_user("mlost"), ps.new_user("mlosu")
    a = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile, timeout=5)
    try:
        a.login(ua.localpart, ua.password, resource="a")
        a.im_sync()
        assert cmd("CLIENT", "PAUSE", "20000", "WRITE") == "OK"
        send(a, ub.jid, body("while Redis is paused"))
        a.im_sync()
        time.sleep(0.3)  # the archive script is queued on the paused connection
        cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        cmd("CLIENT", "UNPAUSE")
        time.sleep(0.5)
        assert ps.router.poll() is None, "the router died when its Redis connection dropped"
    finally:
        cmd("CLIENT", "UNPAUSE")
        a.close()
    ps.wait_login(ps.probe)


def test_forged_stanza_ids_go_from_messages_not_archived(login, new_user):
    """XEP-0359: a <stanza-id/> by the sender's or the recipient's address is the server's
    to give; one the client put on a message that is not archived (a chat state alone, a
    no-store hint) does not reach the recipient either."""
    ua, ub = new_user("mamf"), new_user("mamk")
    a, b = online(login, ua, "a"), online(login, ub, "b")
    A, B = bare(a.jid), bare(b.jid)
    forged = ("<stanza-id xmlns='%s' by='%s' id='forged-b'/>" % (NS_SID, B) +
              "<stanza-id xmlns='%s' by='%s' id='forged-a'/>" % (NS_SID, A))
    cases = [
        "<active xmlns='http://jabber.org/protocol/chatstates'/>" + forged,
        body("not kept") + "<no-store xmlns='urn:xmpp:hints'/>" + forged,
    ]
    for inner in cases:
        m = got_message(b, send(a, b.jid, inner))
        assert stanza_ids(m, B) == [] and stanza_ids(m, A) == [], \
            "forged stanza-id delivered: %s" % dump(m)

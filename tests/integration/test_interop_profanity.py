"""Interop with a real console client, Profanity (Debian's `profanity`, built with OMEMO),
driven in tmux as a person would type (profanity_harness.py): two accounts that have each
other in their rosters turn OMEMO on and exchange encrypted messages, a second Profanity
logged in as the same account sees the conversation from the message archive, and
Profanity's private-storage bookmarks and a XEP-0402 client's are one list; Profanity in
a group chat room (XEP-0045) with a client on the other frontend, with history on rejoin,
and Profanity creating a room and accepting the instant configuration.

Skipped (saying so) only when profanity or tmux is not installed."""

import re
import time
import uuid

import pytest

import profanity_harness as ph
from test_im_helpers import befriend, online
from xmpp_client import dump

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICELIST = NS_AXOLOTL + ".devicelist"

_why = ph.available()
if _why:
    pytestmark = pytest.mark.skip(reason="Profanity interop: " + _why)


@pytest.fixture
def profanity(stack, tmp_path):
    """profanity(user, resource) -> a started Profanity logged in to the stack's main
    frontend; all quit (and their tmux server killed) at the end of the test."""
    yield from ph.starter(stack, tmp_path)


def friends(login, ua, ub):
    """ua and ub have each other in their rosters with subscription both (done by two raw
    clients that log out again)."""
    a = online(login, ua, resource="setup")
    b = online(login, ub, resource="setup")
    befriend(a, b)
    a.close()
    b.close()


def token():
    return uuid.uuid4().hex[:8]


def line_of(sender, text, marker="-"):
    """A chat window's line: 'HH:MM:SS <marker> <sender>[/resource]: <text>' (marker '-'
    for plain messages, the OMEMO character '~' for decrypted ones)."""
    return re.compile(r"\d\d:\d\d:\d\d %s %s(/\S+)?: %s"
                      % (re.escape(marker), re.escape(sender), re.escape(text)))


def test_profanity_logs_in_and_chats(profanity, login, new_user):
    """The harness itself, and the baseline of the others: two Profanity accounts log in
    over STARTTLS and chat in plain text."""
    ua, ub = new_user("pfa"), new_user("pfb")
    friends(login, ua, ub)
    pa = profanity(ua, "term")
    pb = profanity(ub, "term")
    pb.send("/msg %s" % ua.jid)
    text = "hello in plain %s" % token()
    pa.send("/msg %s %s" % (ub.jid, text))
    pb.wait_for(line_of(ua.jid, text), what="alice's plain message")
    pa.wait_for(line_of("me", text), what="alice's own line")


def device_list_of(client, owner):
    """The device ids in owner's OMEMO device list, read by `client` (a raw client of
    another account), or None while the node does not exist."""
    res = client.iq("get", "<pubsub xmlns='%s'><items node='%s'/></pubsub>"
                    % (NS_PUBSUB, DEVICELIST), to=owner)
    if res.get("type") != "result":
        return None
    return [d.get("id") for d in res.iter("{%s}device" % NS_AXOLOTL)]


def wait_device(client, owner, device_id, timeout=ph.WAIT):
    deadline = time.monotonic() + timeout
    ids = None
    while time.monotonic() < deadline:
        ids = device_list_of(client, owner)
        if ids and device_id in ids:
            return ids
        time.sleep(0.3)
    raise AssertionError("%s's OMEMO device list read by %s: %r, expected device %s"
                         % (owner, client.jid, ids, device_id))


def omemo_gen(p):
    """/omemo gen on the console window; returns the device id Profanity shows."""
    p.send("/omemo trustmode blind")
    p.send("/omemo gen")
    m = p.wait_for(re.compile(r"OMEMO crytographic materials generated\. "
                              r"Your Device ID is (\d+)\."), what="OMEMO keys generated")
    return m.group(1)


def test_profanity_omemo_between_two_accounts(profanity, login, new_user):
    """The issue's first "done when": alice and bob turn OMEMO on in Profanity (keys
    generated, device list and bundle published through PEP with open access), alice
    starts an OMEMO session with bob and writes; bob's Profanity shows the plaintext with
    the OMEMO marker; bob answers encrypted and alice reads it; what went over the wire
    was the encrypted payload only."""
    ua, ub, uc = new_user("pfa"), new_user("pfb"), new_user("pfc")
    friends(login, ua, ub)
    pa = profanity(ua, "term")
    pb = profanity(ub, "term")
    dev_a = omemo_gen(pa)
    dev_b = omemo_gen(pb)

    # Someone with no subscription at all reads both device lists (published by
    # Profanity with pubsub#access_model open, as OMEMO needs for strangers).
    carol = login(uc, resource="raw")
    wait_device(carol, ua.jid, dev_a)
    wait_device(carol, ub.jid, dev_b)

    pb.send("/msg %s" % ua.jid)                       # bob looks at alice's window
    pa.send("/msg %s" % ub.jid)
    pa.send("/omemo start")
    pa.wait_for(re.compile(r"%s .*\[OMEMO\]" % re.escape(ub.jid)), what="OMEMO window title")
    # Profanity trusts bob's device blindly once it has fetched his bundle (console).
    pa.window(1)
    pa.wait_for("Blind trust for %s device %s" % (ub.jid, dev_b), what="bob's bundle fetched")
    pa.window(2)
    secret = "omemo secret %s" % token()
    pa.send(secret)
    pb.wait_for(line_of(ua.jid, secret, marker="~"), what="alice's OMEMO message decrypted")
    pa.wait_for(line_of("me", secret, marker="~"), what="alice's own OMEMO line")

    # Bob answers encrypted too: OMEMO on in his window, alice's device fetched and trusted.
    pb.send("/omemo start")
    pb.window(1)
    pb.wait_for("Blind trust for %s device %s" % (ua.jid, dev_a), what="alice's bundle fetched")
    pb.window(2)
    answer = "omemo answer %s" % token()
    pb.send(answer)
    pa.wait_for(line_of(ub.jid, answer, marker="~"), what="bob's OMEMO answer decrypted")

    got = [s for s in pb.received() if s.startswith("<message") and NS_AXOLOTL in s]
    assert got, "bob's Profanity logged no encrypted message received"
    leaked = [s for s in pb.received() if secret in s] + [s for s in pa.received() if answer in s]
    assert not leaked, "a plaintext went over the wire: %s" % leaked[0][:2000]
    assert 'rid="%s"' % dev_b in got[-1] or "rid='%s'" % dev_b in got[-1], \
        "the encrypted message has no key for bob's device %s: %s" % (dev_b, got[-1][:2000])
    carol.close()


def test_profanity_second_device_reads_history_from_archive(profanity, login, new_user):
    """The issue's second "done when": alice and bob chat; then alice logs in with a second
    Profanity (other resource, empty local history), turns `/mam` on and opens the chat
    with bob: both sides of the conversation are there, in order, fetched from the
    archive (nothing else could bring them: that device was not online)."""
    ua, ub = new_user("pfa"), new_user("pfb")
    friends(login, ua, ub)
    pa = profanity(ua, "term")
    pb = profanity(ub, "term")
    t = token()
    first, reply = "first from alice %s" % t, "reply from bob %s" % t
    pa.send("/msg %s %s" % (ub.jid, first))
    pb.send("/msg %s" % ua.jid)
    pb.wait_for(line_of(ua.jid, first), what="alice's message")
    pb.send(reply)
    pa.wait_for(line_of(ub.jid, reply), what="bob's reply")

    pa2 = profanity(ua, "second")
    pa2.send("/mam on")
    pa2.send("/msg %s" % ub.jid)
    pa2.wait_for(reply, what="bob's reply from the archive")
    # Profanity 0.13.1 then asks again with an <after/> misplaced inside <query/> (not in
    # an RSM <set/>), which the server ignores: each line shows twice. Order is what counts.
    screen = pa2.screen()
    assert first in screen, "alice's own message is not in the history:\n%s" % screen
    assert screen.index(first) < screen.index(reply), \
        "the history is not in order:\n%s" % screen
    queries = [s for s in pa2.sent() if "urn:xmpp:mam:2" in s]
    assert queries, "the second Profanity sent no archive query"


NS_BOOKMARKS2 = "urn:xmpp:bookmarks:1"


def bookmarks2(client):
    """{room JID: <conference/>} of the client's own XEP-0402 bookmarks."""
    res = client.iq("get", "<pubsub xmlns='%s'><items node='%s'/></pubsub>"
                    % (NS_PUBSUB, NS_BOOKMARKS2))
    if res.get("type") != "result":
        return {}
    return {it.get("id"): it.find("{%s}conference" % NS_BOOKMARKS2)
            for it in res.iter("{%s}item" % NS_PUBSUB)}


def test_profanity_bookmarks_shared_with_xep0402_clients(profanity, login, new_user):
    """Profanity 0.13 keeps bookmarks in private storage (XEP-0049 storage:bookmarks): one it
    adds shows up for a XEP-0402 client, and one a XEP-0402 client publishes is in the list
    of a Profanity that logs in afterwards (XEP-0411)."""
    ua = new_user("pfa")
    pa = profanity(ua, "term")
    pa.send("/bookmark add tea@conference.localhost nick al name Tea autojoin off")
    raw = login(ua, resource="raw")
    deadline = time.monotonic() + ph.WAIT
    marks = {}
    while "tea@conference.localhost" not in marks and time.monotonic() < deadline:
        marks = bookmarks2(raw)
        time.sleep(0.2)
    conf = marks.get("tea@conference.localhost")
    assert conf is not None, "Profanity's bookmark is not a XEP-0402 item: %r" % marks
    assert conf.get("name") == "Tea" and conf.get("autojoin") in ("false", "0", None)
    assert conf.findtext("{%s}nick" % NS_BOOKMARKS2) == "al"

    res = raw.iq("set", "<pubsub xmlns='%s'><publish node='%s'><item id='coffee@conference."
                 "localhost'><conference xmlns='%s' name='Coffee' autojoin='false'><nick>al"
                 "</nick></conference></item></publish><publish-options><x xmlns='jabber:x:"
                 "data' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s#publish-"
                 "options</value></field><field var='pubsub#persist_items'><value>true</value>"
                 "</field><field var='pubsub#max_items'><value>max</value></field><field var="
                 "'pubsub#send_last_published_item'><value>never</value></field><field var="
                 "'pubsub#access_model'><value>whitelist</value></field></x></publish-options>"
                 "</pubsub>" % (NS_PUBSUB, NS_BOOKMARKS2, NS_BOOKMARKS2, NS_PUBSUB))
    assert res.get("type") == "result", dump(res)
    pa2 = profanity(ua, "second")
    pa2.send("/bookmark list")
    pa2.wait_for("Coffee - coffee@conference.localhost", what="the XEP-0402 client's bookmark")
    pa2.wait_for("Tea - tea@conference.localhost", what="Profanity's own bookmark")
    raw.close()


def test_profanity_creates_a_room(profanity, login, new_user):
    """Profanity's first join creates the room (XEP-0045 10.1.1, locked); `/room accept`
    takes the instant room (10.1.2) and then others get in."""
    from test_muc import join, join_error
    from test_im_helpers import assert_error
    ua, ub = new_user("pca"), new_user("pcb")
    room = "profnew%s@conference.localhost" % token()
    pa = profanity(ua, "term")
    b = login(ub)
    pa.send("/join %s nick alice" % room)
    pa.wait_for(re.compile(r"/room accept"), what="the locked-room notice")
    assert_error(join_error(b, room, "bob"), "item-not-found")
    pa.send("/room accept")
    # Profanity says "Room unlocked." as it sends the form: wait for the room's answer.
    sent = pa.wait_log(r'SENT: <iq id="([^"]+)"[^>]*type="set"><query '
                       r'xmlns="http://jabber.org/protocol/muc#owner">', what="the instant form")
    pa.wait_log(r'RECV: <iq id="%s" type="result"' % re.escape(sent.group(1)),
                what="the room's result")
    me = join(b, room, "bob")
    assert me.get("type") is None

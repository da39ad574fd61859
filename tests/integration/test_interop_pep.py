"""What modern clients do with PEP and the archive, done with a real client library
(Debian's python3-slixmpp 1.8 and its plugins: xep_0060, xep_0163, xep_0115, xep_0084,
xep_0172, xep_0048/xep_0049, xep_0313):

- avatars (XEP-0084): data then metadata published; a contact whose client advertises
  urn:xmpp:avatar:metadata+notify in its entity capabilities (XEP-0115) gets the metadata
  notification and fetches the data by id; the user's other device gets it too;
- user nickname (XEP-0172) reaching a contact that asked for it;
- bookmarks (XEP-0402; slixmpp has no plugin for it, so raw XEP-0060 publish with the
  XEP's publish-options): the other device is notified and reads the same list, a legacy
  private-storage read (XEP-0049 storage:bookmarks, slixmpp's xep_0048) sees it, and a
  legacy write shows up as XEP-0402 items (XEP-0411); a contact may not read them;
- OMEMO-shaped device list and bundle (XEP-0384) published with access_model open and
  read by someone with no subscription at all;
- the archive (XEP-0313): messages exchanged, then a new device pages through them in
  order with RSM.

Each scenario fails (never passes) when the server lacks the feature."""

import asyncio
import base64
import hashlib
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import slix_helpers
from test_im_helpers import befriend, online

slixmpp = pytest.importorskip("slixmpp")
from slixmpp.exceptions import IqError  # noqa: E402
from slix_client import RecordingClient, close_all  # noqa: E402

TIMEOUT = 90.0
STEP = 15.0        # bound of one wait inside a scenario

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBLISH_OPTIONS = NS_PUBSUB + "#publish-options"
NS_PUBSUB_EVENT = NS_PUBSUB + "#event"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_AVATAR_DATA = "urn:xmpp:avatar:data"
NS_AVATAR_META = "urn:xmpp:avatar:metadata"
NS_NICK = "http://jabber.org/protocol/nick"
NS_BOOKMARKS2 = "urn:xmpp:bookmarks:1"
NS_AXOLOTL = "eu.siacs.conversations.axolotl"
OMEMO_DEVICELIST = NS_AXOLOTL + ".devicelist"


class Client(RecordingClient):
    """A slixmpp client with the PEP plugins; `interests` are namespaces it advertises
    as NS+notify (XEP-0163 filtered notifications) in its caps before its first presence.
    Records every PEP item notification ('pubsub_publish') for later waits."""

    def __init__(self, jid, password, cafile, interests=(), plugins=()):
        super().__init__(jid, password, cafile,
                         plugins=("xep_0030", "xep_0004", "xep_0060", "xep_0115",
                                  "xep_0163") + tuple(plugins))
        self.interests = list(interests)
        self.events = []                 # (node, publisher bare JID, item element)
        self.add_event_handler("pubsub_publish", self._on_publish)
        self.disco_asked = self.disco_answered = 0
        self.add_filter("in", self._disco_in)
        self.add_filter("out", self._disco_out)

    async def on_session(self):
        await self.get_roster(timeout=STEP)
        for ns in self.interests:
            self["xep_0030"].add_feature("%s+notify" % ns)
        # The caps hash of the initial presence covers every +notify feature.
        await self["xep_0115"].update_caps(broadcast=False)
        self.send_presence()
        await self._caps_learnt()

    def _disco_in(self, stanza):
        if stanza.name == "iq" and stanza["type"] == "get" and \
                stanza.xml.find("{%s}query" % NS_DISCO_INFO) is not None:
            self.disco_asked += 1
        return stanza

    def _disco_out(self, stanza):
        if stanza.name == "iq" and stanza["type"] == "result" and \
                stanza.xml.find("{%s}query" % NS_DISCO_INFO) is not None:
            self.disco_answered += 1
        return stanza

    async def _caps_learnt(self):
        """Returns once the server has taken in the capabilities of the initial presence
        (XEP-0115): a disco#info round trip to the server follows the presence; if the
        server asked us about our hash meanwhile (it did not know it yet), once our answer
        is sent, a second round trip makes sure it was read before anyone publishes."""
        await self["xep_0030"].get_info(jid=self.boundjid.domain, local=False, timeout=STEP)
        if not self.disco_asked:
            return      # the server knew the hash already (or ignores caps)
        deadline = time.monotonic() + STEP
        while self.disco_answered < self.disco_asked and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self["xep_0030"].get_info(jid=self.boundjid.domain, local=False, timeout=STEP)

    def _on_publish(self, msg):
        items = msg["pubsub_event"]["items"]
        # The XML, not the stanza object: iterating that here would restart the iteration
        # slixmpp's xep_0060 is doing over the same object (ElementBase keeps the index).
        for item in items.xml.findall("{%s}item" % NS_PUBSUB_EVENT):
            self.events.append((items["node"], msg["from"].bare, item))
        self.changed.set()

    async def wait_item(self, node, publisher, pred=lambda item: True, timeout=STEP):
        """The first recorded notification of `node` from `publisher` whose <item/>
        satisfies pred (consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (n, frm, item) in enumerate(self.events):
                if n == node and frm == publisher and pred(item):
                    del self.events[i]
                    return item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("%s: no notification of %s from %s within %.0fs; got: %s"
                                     % (self.boundjid, node, publisher, timeout,
                                        [(n, f, ET.tostring(i)[:300]) for n, f, i in self.events]))
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def publish_options(self, **fields):
        """An XEP-0060 publish-options form: pubsub#KEY=VALUE for each keyword."""
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=NS_PUBLISH_OPTIONS)
        for k, v in fields.items():
            form.add_field(var="pubsub#%s" % k, value=v)
        return form


def connect(stack, user, resource, **kw):
    c = Client("%s/%s" % (user.jid, resource), user.password, stack.cafile, **kw)
    c.connect(("127.0.0.1", stack.port), force_starttls=True, disable_starttls=False)
    return c


def run(coro):
    return slix_helpers.run(coro, TIMEOUT)


async def started(*clients):
    await asyncio.wait_for(asyncio.gather(*(c.started for c in clients)), STEP * 2)


def friends(login, ua, ub):
    """Mutual presence subscription between ua and ub (two raw clients, logged out)."""
    a = online(login, ua, resource="setup")
    b = online(login, ub, resource="setup")
    befriend(a, b)
    a.close()
    b.close()


def child(el, ns, name):
    return el.find("{%s}%s" % (ns, name))


def items_of(iq):
    """The <item/> elements of a pubsub items result."""
    return list(iq.xml.iter("{%s}item" % NS_PUBSUB))


# A 1x1 PNG.
AVATAR_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_avatar_reaches_contact_and_own_other_device(stack, login, new_user):
    ua, ub = new_user("pava"), new_user("pavb")
    friends(login, ua, ub)
    avatar_id = hashlib.sha1(AVATAR_PNG).hexdigest()

    async def scenario():
        laptop = connect(stack, ua, "laptop", plugins=("xep_0084",))
        phone = connect(stack, ua, "phone", plugins=("xep_0084",))
        bob = connect(stack, ub, "desk", plugins=("xep_0084",))
        clients = [laptop, phone, bob]
        try:
            await started(*clients)
            # XEP-0084 4.1/4.2: the data first, then the metadata that points at it.
            await laptop["xep_0084"].publish_avatar(AVATAR_PNG, timeout=STEP)
            await laptop["xep_0084"].publish_avatar_metadata(
                items=[{"id": avatar_id, "type": "image/png", "bytes": len(AVATAR_PNG),
                        "width": "1", "height": "1"}], timeout=STEP)
            for c in (bob, phone):
                item = await c.wait_item(NS_AVATAR_META, ua.jid,
                                         lambda it: it.get("id") == avatar_id)
                info = item.find("{%s}metadata/{%s}info" % (NS_AVATAR_META, NS_AVATAR_META))
                assert info is not None and info.get("id") == avatar_id, ET.tostring(item)
                assert info.get("bytes") == str(len(AVATAR_PNG)), ET.tostring(item)
                # The client then fetches the data by the id it was told (4.3).
                res = await c["xep_0084"].retrieve_avatar(ua.jid, avatar_id, timeout=STEP)
                got = items_of(res)
                assert [i.get("id") for i in got] == [avatar_id], res
                data = child(got[0], NS_AVATAR_DATA, "data")
                assert data is not None and base64.b64decode(data.text) == AVATAR_PNG, res
            # Nothing of the data node is pushed: nobody asked for avatar:data+notify.
            assert not [e for e in bob.events + phone.events if e[0] == NS_AVATAR_DATA], \
                "avatar data was pushed to a client that did not ask for it"
        finally:
            await close_all(clients)

    run(scenario())


def test_avatar_last_item_sent_when_contact_comes_online(stack, login, new_user):
    """A contact who logs in after the publication gets the last metadata item once the
    server knows (through its caps) that it wants it (XEP-0163 6.1.1)."""
    ua, ub = new_user("pava"), new_user("pavb")
    friends(login, ua, ub)
    avatar_id = hashlib.sha1(AVATAR_PNG).hexdigest()

    async def scenario():
        laptop = connect(stack, ua, "laptop", plugins=("xep_0084",))
        clients = [laptop]
        try:
            await started(laptop)
            await laptop["xep_0084"].publish_avatar(AVATAR_PNG, timeout=STEP)
            await laptop["xep_0084"].publish_avatar_metadata(
                items=[{"id": avatar_id, "type": "image/png", "bytes": len(AVATAR_PNG)}],
                timeout=STEP)
            bob = connect(stack, ub, "desk", plugins=("xep_0084",))
            clients.append(bob)
            await started(bob)
            await bob.wait_item(NS_AVATAR_META, ua.jid, lambda it: it.get("id") == avatar_id)
        finally:
            await close_all(clients)

    run(scenario())


def test_nickname_reaches_interested_contact_only(stack, login, new_user):
    ua, ub, uc = new_user("pnka"), new_user("pnkb"), new_user("pnkc")
    friends(login, ua, ub)
    friends(login, ua, uc)
    nick = "Alice %s" % uuid.uuid4().hex[:6]

    async def scenario():
        alice = connect(stack, ua, "laptop", plugins=("xep_0172",))
        bob = connect(stack, ub, "desk", plugins=("xep_0172",))
        # Carol is a contact too, but her client does not ask for nicknames.
        carol = connect(stack, uc, "desk")
        clients = [alice, bob, carol]
        try:
            await started(*clients)
            await alice["xep_0172"].publish_nick(nick, timeout=STEP)
            item = await bob.wait_item(NS_NICK, ua.jid)
            assert child(item, NS_NICK, "nick").text == nick, ET.tostring(item)
            # A message from alice to carol after bob got his: the router sent carol
            # anything it had for her before it.
            marker = asyncio.get_running_loop().create_future()
            carol.add_event_handler("message", lambda m: m["body"] == "sync" and
                                    not marker.done() and marker.set_result(True))
            alice.send_message(mto=carol.boundjid.full, mbody="sync", mtype="chat")
            await asyncio.wait_for(marker, STEP)
            assert not [e for e in carol.events if e[0] == NS_NICK], \
                "a contact without nick+notify got the nickname"
        finally:
            await close_all(clients)

    run(scenario())


def conference(name, nick, autojoin=True):
    el = ET.Element("{%s}conference" % NS_BOOKMARKS2, name=name,
                    autojoin="true" if autojoin else "false")
    ET.SubElement(el, "{%s}nick" % NS_BOOKMARKS2).text = nick
    return el


def test_bookmarks_new_and_legacy_clients_see_one_list(stack, login, new_user):
    ua, ub = new_user("pbma"), new_user("pbmb")
    friends(login, ua, ub)
    room1 = "tea@conference.localhost"
    room2 = "coffee@conference.localhost"

    async def scenario():
        laptop = connect(stack, ua, "laptop")
        phone = connect(stack, ua, "phone", interests=[NS_BOOKMARKS2])
        legacy = connect(stack, ua, "legacy", plugins=("xep_0049", "xep_0048"))
        bob = connect(stack, ub, "desk", interests=[NS_BOOKMARKS2])
        clients = [laptop, phone, legacy, bob]
        try:
            await started(*clients)
            # XEP-0402 3.3: item id = the room's JID, with these publish-options.
            await laptop["xep_0060"].publish(
                ua.jid, NS_BOOKMARKS2, id=room1, payload=conference("Tea", "al"),
                options=laptop.publish_options(persist_items="true", max_items="max",
                                               send_last_published_item="never",
                                               access_model="whitelist"),
                timeout=STEP)
            item = await phone.wait_item(NS_BOOKMARKS2, ua.jid, lambda it: it.get("id") == room1)
            assert child(item, NS_BOOKMARKS2, "conference").get("name") == "Tea"
            res = await phone["xep_0060"].get_items(ua.jid, NS_BOOKMARKS2, timeout=STEP)
            assert [i.get("id") for i in items_of(res)] == [room1], res

            # A legacy client reads its private storage (XEP-0049 storage:bookmarks).
            res = await legacy["xep_0048"].get_bookmarks(method="xep_0049", timeout=STEP)
            confs = res["private"]["bookmarks"]["conferences"]
            assert [(str(c["jid"]), c["name"], c["nick"], c["autojoin"]) for c in confs] == \
                [(room1, "Tea", "al", True)], res

            # The legacy client writes the whole list with one more room...
            bm = legacy["xep_0048"].stanza.Bookmarks()
            bm.add_conference(room1, "al", name="Tea", autojoin=True)
            bm.add_conference(room2, "al", name="Coffee", autojoin=False)
            await legacy["xep_0048"].set_bookmarks(bm, method="xep_0049", timeout=STEP)
            # ...which the new clients see as XEP-0402 items (XEP-0411 mirror).
            item = await phone.wait_item(NS_BOOKMARKS2, ua.jid, lambda it: it.get("id") == room2)
            conf = child(item, NS_BOOKMARKS2, "conference")
            assert conf.get("name") == "Coffee" and conf.get("autojoin") in ("false", "0", None)
            res = await laptop["xep_0060"].get_items(ua.jid, NS_BOOKMARKS2, timeout=STEP)
            assert sorted(i.get("id") for i in items_of(res)) == sorted([room1, room2]), res

            # Bookmarks are private (access model whitelist): a contact can neither
            # read them nor was he told.
            with pytest.raises(IqError) as err:
                await bob["xep_0060"].get_items(ua.jid, NS_BOOKMARKS2, timeout=STEP)
            # XEP-0060 6.5.9.10: <not-allowed/> with <closed-node/>.
            assert err.value.condition == "not-allowed", err.value.iq
            assert err.value.iq.xml.find(".//{%s#errors}closed-node" % NS_PUBSUB) is not None, \
                err.value.iq
            assert not [e for e in bob.events if e[0] == NS_BOOKMARKS2], bob.events
        finally:
            await close_all(clients)

    run(scenario())


def test_omemo_device_list_and_bundle_open_to_strangers(stack, login, new_user):
    """What Conversations, Dino and Profanity publish for OMEMO (XEP-0384 0.3,
    eu.siacs.conversations.axolotl), with access_model open, read by someone who is
    nobody's contact; a contact with devicelist+notify is told."""
    ua, ub, uc = new_user("poma"), new_user("pomb"), new_user("pomc")
    friends(login, ua, ub)
    device = "31415926"
    bundles = "%s.bundles:%s" % (NS_AXOLOTL, device)

    async def scenario():
        alice = connect(stack, ua, "phone", interests=[OMEMO_DEVICELIST])
        bob = connect(stack, ub, "desk", interests=[OMEMO_DEVICELIST])
        carol = connect(stack, uc, "desk")
        clients = [alice, bob, carol]
        try:
            await started(*clients)
            dl = ET.Element("{%s}list" % NS_AXOLOTL)
            ET.SubElement(dl, "{%s}device" % NS_AXOLOTL, id=device)
            await alice["xep_0060"].publish(ua.jid, OMEMO_DEVICELIST, id="current", payload=dl,
                                            options=alice.publish_options(access_model="open"),
                                            timeout=STEP)
            bundle = ET.fromstring(
                "<bundle xmlns='%s'><signedPreKeyPublic signedPreKeyId='1'>%s"
                "</signedPreKeyPublic><signedPreKeySignature>%s</signedPreKeySignature>"
                "<identityKey>%s</identityKey><prekeys>%s</prekeys></bundle>"
                % (NS_AXOLOTL, base64.b64encode(b"s" * 33).decode(),
                   base64.b64encode(b"g" * 64).decode(), base64.b64encode(b"i" * 33).decode(),
                   "".join("<preKeyPublic preKeyId='%d'>%s</preKeyPublic>"
                           % (n, base64.b64encode(bytes([n]) * 33).decode())
                           for n in range(1, 21))))
            await alice["xep_0060"].publish(ua.jid, bundles, id="current", payload=bundle,
                                            options=alice.publish_options(
                                                persist_items="true", access_model="open"),
                                            timeout=STEP)

            # The contact with devicelist+notify is told; alice's own device too.
            for c in (bob, alice):
                item = await c.wait_item(OMEMO_DEVICELIST, ua.jid)
                ids = [d.get("id") for d in item.iter("{%s}device" % NS_AXOLOTL)]
                assert ids == [device], ET.tostring(item)
            # A stranger reads both, as a client does before its first encrypted message.
            res = await carol["xep_0060"].get_items(ua.jid, OMEMO_DEVICELIST, timeout=STEP)
            ids = [d.get("id") for d in res.xml.iter("{%s}device" % NS_AXOLOTL)]
            assert ids == [device], res
            res = await carol["xep_0060"].get_items(ua.jid, bundles, max_items=1, timeout=STEP)
            got = items_of(res)
            assert len(got) == 1 and child(got[0], NS_AXOLOTL, "bundle") is not None, res
            keys = got[0].findall("{%s}bundle/{%s}prekeys/{%s}preKeyPublic"
                                  % (NS_AXOLOTL, NS_AXOLOTL, NS_AXOLOTL))
            assert len(keys) == 20, res
            # The stranger's client did not ask and was not told.
            assert not carol.events, carol.events
        finally:
            await close_all(clients)

    run(scenario())


def test_archive_paged_in_order_on_a_new_device(stack, login, new_user):
    ua, ub = new_user("pmma"), new_user("pmmb")
    friends(login, ua, ub)
    tag = uuid.uuid4().hex[:6]
    n = 12

    async def scenario():
        alice = connect(stack, ua, "laptop", plugins=("xep_0313",))
        bob = connect(stack, ub, "desk")
        clients = [alice, bob]
        try:
            await started(alice, bob)
            got = asyncio.Queue()
            alice.add_event_handler("message", lambda m: m["body"] and got.put_nowait(m["body"]))
            bob.add_event_handler("message", lambda m: m["body"] and got.put_nowait(m["body"]))
            sent = []
            for i in range(n):
                frm, to = (alice, ub.jid) if i % 2 == 0 else (bob, ua.jid)
                body = "%s msg %02d" % (tag, i)
                frm.send_message(mto=to, mbody=body, mtype="chat")
                # One at a time: each reaches its recipient before the next is written.
                assert await asyncio.wait_for(got.get(), STEP) == body
                sent.append(body)

            tablet = connect(stack, ua, "tablet", plugins=("xep_0313",))
            clients.append(tablet)
            await started(tablet)
            pages, bodies = 0, []
            it = tablet["xep_0313"].retrieve(with_jid=slixmpp.JID(ub.jid), iterator=True,
                                             rsm={"max": 5})
            async for page in it:
                pages += 1
                for m in page["mam"]["results"]:
                    fwd = m["mam_result"]["forwarded"]["stanza"]
                    bodies.append(fwd["body"])
                assert pages < 10, "paging does not end: %s" % bodies
            assert bodies == sent, "archive as the new device pages it: %s" % bodies
            assert pages >= 3, "%d messages in pages of 5 came in %d pages" % (n, pages)
        finally:
            await close_all(clients)

    run(scenario())

"""XEP-0398: the server keeps User Avatar (XEP-0084, PEP) and vCard-based avatars (XEP-0153)
in step and puts the avatar's hash into its users' available presence."""

import base64
import hashlib

from pep_helpers import get_items, item_list, publish, published_id, wait_until
from test_im_helpers import QUIET, bare, befriend, drop_pending, online, presence_pred
from xmpp_client import NS_DISCO_INFO, dump, q

NS_DATA = "urn:xmpp:avatar:data"
NS_META = "urn:xmpp:avatar:metadata"
NS_VCARD = "vcard-temp"
NS_UPDATE = "vcard-temp:x:update"
# A 1x1 PNG, and a second image (any bytes will do: the server only hashes them).
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
                       "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
OTHER = b"\x89PNG\r\n\x1a\n" + b"another image" * 10


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def publish_avatar(c, image, mime="image/png"):
    h = sha1(image)
    published_id(publish(c, NS_DATA, "<data xmlns='%s'>%s</data>"
                         % (NS_DATA, base64.b64encode(image).decode()), item_id=h))
    published_id(publish(c, NS_META, "<metadata xmlns='%s'><info bytes='%d' id='%s' "
                         "type='%s' width='1' height='1'/></metadata>"
                         % (NS_META, len(image), h, mime), item_id=h))
    return h


def vcard_photo(c, jid=None):
    """(TYPE, decoded BINVAL) of a vCard, or None when it has no photo."""
    res = c.im_iq("get", "<vCard xmlns='%s'/>" % NS_VCARD, to=jid)
    assert res.get("type") == "result", dump(res)
    photo = res.find("%s/%s" % (q(NS_VCARD, "vCard"), q(NS_VCARD, "PHOTO")))
    if photo is None:
        return None
    return (photo.findtext(q(NS_VCARD, "TYPE")),
            base64.b64decode("".join(photo.findtext(q(NS_VCARD, "BINVAL")).split())))


def test_the_feature_is_on_the_account(login, new_user):
    c = online(login, new_user("avf"))
    res = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=bare(c.jid))
    feats = [f.get("var") for f in res.iter(q(NS_DISCO_INFO, "feature"))]
    assert "urn:xmpp:pep-vcard-conversion:0" in feats, dump(res)


def test_a_pep_avatar_goes_into_the_vcard(login, new_user):
    a = online(login, new_user("ava"))
    b = online(login, new_user("avb"))
    # The vCard keeps what else it held.
    res = a.im_iq("set", "<vCard xmlns='%s'><FN>Alice</FN></vCard>" % NS_VCARD)
    assert res.get("type") == "result", dump(res)
    publish_avatar(a, PNG)
    assert wait_until(lambda: vcard_photo(b, bare(a.jid)), "the photo in the vCard") == \
        ("image/png", PNG)
    res = b.im_iq("get", "<vCard xmlns='%s'/>" % NS_VCARD, to=bare(a.jid))
    assert res.findtext("%s/%s" % (q(NS_VCARD, "vCard"), q(NS_VCARD, "FN"))) == "Alice"
    # A new avatar replaces it; switching the avatar off (an empty metadata element,
    # XEP-0084 4.5) takes the photo out.
    publish_avatar(a, OTHER)
    wait_until(lambda: vcard_photo(a) == ("image/png", OTHER), "the new photo")
    published_id(publish(a, NS_META, "<metadata xmlns='%s'/>" % NS_META, item_id="off"))
    wait_until(lambda: vcard_photo(a) is None, "the photo removed")


def test_an_image_that_does_not_match_its_id_is_not_converted(login, new_user):
    a = online(login, new_user("avx"))
    h = sha1(PNG)
    published_id(publish(a, NS_DATA, "<data xmlns='%s'>%s</data>"
                         % (NS_DATA, base64.b64encode(OTHER).decode()), item_id=h))
    published_id(publish(a, NS_META, "<metadata xmlns='%s'><info bytes='1' id='%s' "
                         "type='image/png'/></metadata>" % (NS_META, h), item_id=h))
    a.im_sync()
    assert vcard_photo(a) is None


def test_available_presence_carries_the_hash(login, new_user):
    a = online(login, new_user("avp"))
    b = online(login, new_user("avq"))
    befriend(a, b)
    h = publish_avatar(a, PNG)
    wait_until(lambda: vcard_photo(a), "the photo in the vCard")
    drop_pending(a, b)

    def photo_in(p):
        x = p.find(q(NS_UPDATE, "x"))
        return None if x is None else x.findtext(q(NS_UPDATE, "photo"))

    # No <x/>, or one without a photo, or another hash: the server's hash goes in.
    for extra in ("", "<x xmlns='%s'/>" % NS_UPDATE,
                  "<x xmlns='%s'><photo>%s</photo></x>" % (NS_UPDATE, "0" * 40)):
        a.im_presence(extra=extra)
        p = b.im_wait(presence_pred(sender=a.jid), what="a's presence")
        assert photo_in(p) == h, dump(p)
    # An empty photo says "not ready to tell" (XEP-0153): left as it is.
    a.im_presence(extra="<x xmlns='%s'><photo/></x>" % NS_UPDATE)
    p = b.im_wait(presence_pred(sender=a.jid), what="a's presence")
    assert photo_in(p) == "", dump(p)


def test_a_vcard_photo_is_published_as_the_pep_avatar(login, new_user):
    a = online(login, new_user("avv"))
    h = sha1(PNG)
    res = a.im_iq("set", "<vCard xmlns='%s'><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL>"
                  "</PHOTO></vCard>" % (NS_VCARD, base64.encodebytes(PNG).decode()))
    assert res.get("type") == "result", dump(res)

    def meta():
        r = get_items(a, NS_META)
        return item_list(r) if r.get("type") == "result" else None

    items = wait_until(meta, "the metadata item")
    assert [i for i, _ in items] == [h]
    info = items[0][1].find(q(NS_META, "info"))
    assert info.get("id") == h and info.get("type") == "image/png", dump(items[0][1])
    assert int(info.get("bytes")) == len(PNG)
    data = item_list(get_items(a, NS_DATA))
    assert data[0][0] == h
    assert base64.b64decode(data[0][1].text) == PNG
    # The vCard itself is as the client set it.
    assert vcard_photo(a) == ("image/png", PNG)

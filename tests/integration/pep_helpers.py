"""Helpers for the PEP tests (test_pep.py, test_bookmarks.py): XEP-0115 entity
capabilities for the raw client (the verification string and the answer to the server's
disco#info query), and XEP-0060 requests. This module holds no tests itself."""

import time
from xml.sax.saxutils import escape, quoteattr

from caps_helpers import caps_ver, disco_payload
from test_im_helpers import WAIT, error_condition_of, online
from xmpp_client import IQ_TAG, MESSAGE_TAG, NS_DISCO_INFO, dump, new_id, q

NS_CAPS = "http://jabber.org/protocol/caps"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = NS_PUBSUB + "#owner"
NS_PUBSUB_EVENT = NS_PUBSUB + "#event"
NS_PUBSUB_ERRORS = NS_PUBSUB + "#errors"
NS_XDATA = "jabber:x:data"
CAPS_NODE = "https://example.org/xmpp-server-tests"
CLIENT_IDENTITY = ("client", "pc", "", "pep test client")


def caps_features(notify=()):
    """A client's features: disco, caps, NODE+notify for each node it is interested in,
    and a feature of its own so that its verification string is new to the server (which
    must then ask, so the test knows when the server has learnt it)."""
    return [NS_DISCO_INFO, NS_CAPS] + ["%s+notify" % n for n in notify] + \
        ["urn:example:nonce:%s" % new_id("caps")]


def disco_info_answer(identities, features, node):
    return "<query xmlns='%s' node=%s>%s</query>" % (NS_DISCO_INFO, quoteattr(node),
                                                      disco_payload(identities, features))


def answer_caps_query(c, ver, identities, features, timeout=WAIT):
    """Waits for the server's disco#info query for NODE#VER (XEP-0115 section 6.2) and
    answers it with what the hash was computed from."""
    node = "%s#%s" % (CAPS_NODE, ver)

    def is_query(e):
        if e.tag != IQ_TAG or e.get("type") != "get":
            return False
        qe = e.find(q(NS_DISCO_INFO, "query"))
        return qe is not None and qe.get("node") == node

    req = c.im_wait(is_query, timeout, "the server's disco#info query for %s" % node)
    c.send("<iq type='result' id=%s to=%s>%s</iq>"
           % (quoteattr(req.get("id")), quoteattr(req.get("from") or ""),
              disco_info_answer(identities, features, node)))


def caps_presence(c, notify=(), priority=0):
    """Sends available presence with entity capabilities naming interest in the nodes
    `notify` and answers the server's query; returns once the server has the answer."""
    identities = [CLIENT_IDENTITY]
    features = caps_features(notify)
    ver = caps_ver(identities, features)
    c.im_presence(priority=priority,
                  extra="<c xmlns='%s' hash='sha-1' node='%s' ver=%s/>"
                  % (NS_CAPS, CAPS_NODE, quoteattr(ver)))
    answer_caps_query(c, ver, identities, features)
    c.im_sync()
    return ver


def caps_online(login, user, resource=None, notify=(), priority=0):
    """A logged-in, interested, available client whose entity capabilities say it wants
    notifications of the nodes `notify`."""
    c = online(login, user, resource, available=False)
    caps_presence(c, notify, priority)
    return c


# ---- XEP-0060 requests ----

def pubsub(c, type_, inner, to=None, owner=False):
    ns = NS_PUBSUB_OWNER if owner else NS_PUBSUB
    return c.im_iq(type_, "<pubsub xmlns='%s'>%s</pubsub>" % (ns, inner), to=to)


def options_form(form_type, fields):
    vals = "".join("<field var=%s><value>%s</value></field>" % (quoteattr(k), escape(str(v)))
                   for k, v in fields.items())
    return ("<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value>"
            "</field>%s</x>" % (NS_XDATA, form_type, vals))


def publish(c, node, payload, item_id=None, options=None, to=None):
    """Publishes one item; `options` (dict) go as publish-options. Returns the response."""
    idattr = "" if item_id is None else " id=%s" % quoteattr(item_id)
    opts = ""
    if options is not None:
        opts = "<publish-options>%s</publish-options>" % options_form(
            NS_PUBSUB + "#publish-options", options)
    return pubsub(c, "set", "<publish node=%s><item%s>%s</item></publish>%s"
                  % (quoteattr(node), idattr, payload, opts), to=to)


def published_id(res):
    assert res.get("type") == "result", dump(res)
    item = res.find("%s/%s/%s" % (q(NS_PUBSUB, "pubsub"), q(NS_PUBSUB, "publish"),
                                  q(NS_PUBSUB, "item")))
    assert item is not None and item.get("id"), dump(res)
    return item.get("id")


def get_items(c, node, to=None, max_items=None, ids=()):
    """The items request's response."""
    attrs = " node=%s" % quoteattr(node)
    if max_items is not None:
        attrs += " max_items='%s'" % max_items
    inner = "".join("<item id=%s/>" % quoteattr(i) for i in ids)
    return pubsub(c, "get", "<items%s>%s</items>" % (attrs, inner), to=to)


def item_list(res):
    """[(id, payload element)] of an items result."""
    assert res.get("type") == "result", dump(res)
    items = res.find("%s/%s" % (q(NS_PUBSUB, "pubsub"), q(NS_PUBSUB, "items")))
    assert items is not None, dump(res)
    return [(i.get("id"), i[0] if len(i) else None) for i in items.findall(q(NS_PUBSUB, "item"))]


def item_ids(res):
    return [i for i, _ in item_list(res)]


def config_of(c, node):
    """The node's configuration form as {var: value}."""
    res = pubsub(c, "get", "<configure node=%s/>" % quoteattr(node), owner=True)
    assert res.get("type") == "result", dump(res)
    x = res.find("%s/%s/%s" % (q(NS_PUBSUB_OWNER, "pubsub"), q(NS_PUBSUB_OWNER, "configure"),
                               q(NS_XDATA, "x")))
    assert x is not None, dump(res)
    return {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in x.findall(q(NS_XDATA, "field"))}


def assert_pubsub_error(res, cond, app=None, etype=None, feature=None):
    """An error with the stanza condition `cond` and, when given, the pubsub#errors
    condition `app` (with its 'feature')."""
    assert res.get("type") == "error", "expected an error, got %s" % dump(res)
    t, conds = error_condition_of(res)
    assert conds == [cond], "condition %s, expected %s: %s" % (conds, cond, dump(res))
    if etype is not None:
        assert t == etype, "error type %r, expected %r: %s" % (t, etype, dump(res))
    if app is not None:
        el = res.find("%s/%s" % (q("jabber:client", "error"), q(NS_PUBSUB_ERRORS, app)))
        assert el is not None, "no <%s xmlns='%s'/>: %s" % (app, NS_PUBSUB_ERRORS, dump(res))
        if feature is not None:
            assert el.get("feature") == feature, dump(res)


def is_event(owner, node, kind="items"):
    """Predicate: a PEP notification from `owner` about `node` (<items/>, <delete/>,
    <purge/>)."""
    def pred(e):
        if e.tag != MESSAGE_TAG or e.get("from") != owner:
            return False
        ev = e.find(q(NS_PUBSUB_EVENT, "event"))
        if ev is None:
            return False
        el = ev.find(q(NS_PUBSUB_EVENT, kind))
        return el is not None and el.get("node") == node
    return pred


def event_item_ids(msg, kind="item"):
    items = msg.find("%s/%s" % (q(NS_PUBSUB_EVENT, "event"), q(NS_PUBSUB_EVENT, "items")))
    return [i.get("id") for i in items.findall(q(NS_PUBSUB_EVENT, kind))]


def wait_until(fn, what, timeout=WAIT):
    """Polls fn() until it returns something true; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.1)

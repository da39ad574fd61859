"""Entity capabilities (XEP-0115) for raw test clients: the verification string and hash of
section 5, the <c/> element for presence, and answering the server's disco#info query."""

import base64
import hashlib
from xml.sax.saxutils import escape, quoteattr

from xmpp_client import IQ_TAG

NS_CAPS = "http://jabber.org/protocol/caps"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
TEST_NODE = "https://example.org/test-client"


def caps_ver(identities, features, forms=(), algo="sha1"):
    """identities: (category, type, lang, name) tuples; features: vars; forms: lists of
    (var, [values]) with FORM_TYPE among them. Returns the base64 hash of XEP-0115 5.1."""
    s = "".join("%s/%s/%s/%s<" % i for i in sorted(identities))
    s += "".join(f + "<" for f in sorted(features))
    for form in sorted(forms, key=lambda f: dict(f)["FORM_TYPE"][0]):
        d = dict(form)
        s += d["FORM_TYPE"][0] + "<"
        for var in sorted(k for k in d if k != "FORM_TYPE"):
            s += var + "<" + "".join(v + "<" for v in sorted(d[var]))
    return base64.b64encode(hashlib.new(algo, s.encode()).digest()).decode()


def caps_element(ver, node=TEST_NODE, hash_="sha-1"):
    return "<c xmlns='%s' hash=%s node=%s ver=%s/>" % (NS_CAPS, quoteattr(hash_),
                                                        quoteattr(node), quoteattr(ver))


def disco_payload(identities, features, forms=()):
    out = []
    for cat, typ, lang, name in identities:
        lang_attr = " xml:lang=%s" % quoteattr(lang) if lang else ""
        out.append("<identity category=%s type=%s%s name=%s/>"
                   % (quoteattr(cat), quoteattr(typ), lang_attr, quoteattr(name)))
    out += ["<feature var=%s/>" % quoteattr(f) for f in features]
    for form in forms:
        fields = []
        for var, values in form:
            type_attr = " type='hidden'" if var == "FORM_TYPE" else ""
            fields.append("<field var=%s%s>%s</field>" % (
                quoteattr(var), type_attr,
                "".join("<value>%s</value>" % escape(v) for v in values)))
        out.append("<x xmlns='jabber:x:data' type='result'>%s</x>" % "".join(fields))
    return "".join(out)


def is_caps_query(el, ver, node=TEST_NODE):
    """The server's disco#info query for node#ver."""
    if el.tag != IQ_TAG or el.get("type") != "get":
        return False
    query = el.find("{%s}query" % NS_DISCO_INFO)
    return query is not None and query.get("node") == "%s#%s" % (node, ver)


def answer_caps_query(c, iq, payload):
    """Answers the server's query `iq` with a disco#info result holding `payload`."""
    node = iq.find("{%s}query" % NS_DISCO_INFO).get("node")
    c.send("<iq type='result' id=%s to=%s><query xmlns='%s' node=%s>%s</query></iq>"
           % (quoteattr(iq.get("id")), quoteattr(iq.get("from")), NS_DISCO_INFO,
              quoteattr(node), payload))


def announce_caps(c, identities, features, forms=(), priority=None):
    """Sends available presence with capabilities and answers the server's query if it
    comes (it does not when the hash is known). Returns the ver."""
    ver = caps_ver(identities, features, forms)
    prio = "" if priority is None else "<priority>%d</priority>" % priority
    c.send("<presence>%s%s</presence>" % (prio, caps_element(ver)))
    return ver

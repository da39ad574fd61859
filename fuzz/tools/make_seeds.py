#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ (except ipc, see ipc_seeds.c). Run from the
repository root: python3 fuzz/tools/make_seeds.py. The files are committed; this script
only documents how they were made and regenerates them."""
import base64
import os

ROOT = os.path.join(os.path.dirname(__file__), "..", "corpus")


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


HDR = ("<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
       "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>")
TLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
PLAIN = ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
         + base64.b64encode(b"\0alice\0secret").decode() + "</auth>")
PLAIN_BAD = ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
             + base64.b64encode(b"alice@localhost\0alice\0wrong").decode() + "</auth>")


def scram(mech):
    return ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>SCRAMFIRST</auth>"
            % mech, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>SCRAMFINAL</response>")


BIND = ("<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<resource>laptop</resource></bind></iq>")
BIND_AUTO = "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
SESSION = ("<iq type='set' id='sess_1' to='localhost'>"
           "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
STANZAS = (
    "<iq type='get' id='roster_1'><query xmlns='jabber:iq:roster'/></iq>"
    "<presence><priority>5</priority><status>here</status></presence>"
    "<message to='bob@localhost' type='chat' id='m1'><body>hi &amp; &#x263A; &lt;3</body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    "<message to='B\u00dcCHER@m\u00fcnchen.example/R' id='m2'><body>idn</body></message>"
    "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    "<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>"
    "<presence to='bob@localhost' type='subscribe'/>"
    "<message to='bad@@jid' id='m3'><body>x</body></message>"
    "<iq type='get' id='bad'/>"
    "<message type='bogus' to='bob@localhost'/>"
    "<presence type='unavailable'/>")
END = "</stream:stream>"
SM = "urn:xmpp:sm:3"
SM_ENABLE = "<enable xmlns='%s' resume='true' max='60'/>" % SM
SM_TRAFFIC = ("<message to='bob@localhost' type='chat' id='s1'><body>x</body></message>"
              "<r xmlns='%s'/><a xmlns='%s' h='0'/><iq type='get' id='bad2'/>"
              "<a xmlns='%s' h='5'/>" % (SM, SM, SM))
SM_RESUME = "<resume xmlns='%s' previd='0123456789abcdef0123456789abcdef' h='9'/>" % SM


def stream_seed(name, flags, script, reads):
    put("stream", name, bytes([flags]) + bytes(script) + "\0".join(reads).encode())


# STARTTLS, PLAIN, bind, session, stanzas: each element its own read.
stream_seed("starttls_plain_bind", 0x01, [0, 0, 0],
            [HDR, TLS, HDR, PLAIN, HDR, BIND, SESSION, STANZAS, END])
a, r = scram("SCRAM-SHA-256")
stream_seed("starttls_scram256", 0x01, [0, 0, 0], [HDR, TLS, HDR, a, r, HDR, BIND, STANZAS, END])
a, r = scram("SCRAM-SHA-1")
stream_seed("scram1_no_tls", 0x02, [0, 0, 0], [HDR, a, r, HDR + BIND_AUTO + SESSION + STANZAS, END])
# Everything pipelined in one read after the restarts.
stream_seed("pipelined", 0x04, [0, 0, 0], [HDR + PLAIN, HDR + BIND + SESSION + STANZAS, END])
# Direct TLS, wrong password five times then right, then bind refused and retried.
stream_seed("failures", 0x04, [0, 0, 0x08], [HDR] + [PLAIN_BAD] * 3 + [PLAIN, HDR, BIND, BIND, END])
# Router away: auth fails as temporary.
stream_seed("router_away", 0x05, [0, 0, 0], [HDR, TLS, HDR, PLAIN, PLAIN, END])
# Address in back-off; abort; unknown mechanism; stream errors.
stream_seed("backoff_abort", 0x44, [0, 0, 0],
            [HDR, PLAIN, "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
             "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-OAUTH'/>",
             "<message to='a@localhost'/>"])
# Router script: auth temporary, locked, stale reply then credentials; bind too many
# resources, stale reply then success; IPC_CLOSE at the end.
script = 1 | 4 << 3 | 6 << 6 | 4 << 9 | 5 << 12
stream_seed("router_script", 0x24, [script & 255, script >> 8 & 255, script >> 16],
            [HDR, PLAIN, PLAIN, PLAIN, HDR, BIND, BIND, BIND, STANZAS])
# Empty challenge, then the initial response as a response.
stream_seed("empty_initial", 0x04, [0, 0, 0],
            [HDR, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/>",
             "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>SCRAMFIRST</response>",
             "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>SCRAMFINAL</response>",
             HDR, BIND, END])
stream_seed("bad_header", 0x00, [0, 0, 0],
            ["<?xml version='1.0'?><stream:stream to='example.org' xmlns='jabber:server' "
             "xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>"])
stream_seed("small_limits", 0x14, [0, 0, 0],
            [HDR, PLAIN, HDR, BIND, "<message><a><b><c><d><e/></d></c></b></a></message>"])

# XML: byte 0 slice size, byte 1 limits; NUL separates streams (restarts).
xml_streams = [HDR + TLS, HDR + PLAIN, HDR + BIND + SESSION + STANZAS + END]
put("xml", "client_session", b"\x00\x00" + "\0".join(xml_streams).encode())
put("xml", "client_session_sliced", b"\x07\x00" + "\0".join(xml_streams).encode())
put("xml", "bytewise", b"\x01\x00" + (HDR + BIND + STANZAS).encode())
put("xml", "namespaces", b"\x00\x00" + (
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    "<message xmlns:x='urn:x' x:a='1' xml:lang='de' b='2'><x:y xmlns:z='urn:z' z:c='3'>"
    "<![CDATA[<raw>]]>\r\n\t</x:y><body xmlns=''>none</body></message>").encode())
put("xml", "limits", b"\x00\x01" + (HDR + "<message>" + "<a>" * 5 + "</a>" * 5 + "</message>"
                                      + "<message>" + "x" * 1100 + "</message>").encode())
put("xml", "restricted", b"\x00\x00" + "\0".join([
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>",
    HDR + "<!-- c -->", HDR + "<?pi x?>", HDR + "<message>&unknown;</message>",
    "<?xml version='1.0' encoding='ISO-8859-1'?><stream/>",
    "<stream:stream xmlns:stream='urn:wrong'>", HDR + "\xff\xfe"]).encode("utf-8", "surrogateescape"))

# SCRAM: byte 0 options, client-first NUL client-final NUL base64/credentials text.
sha1 = ("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
sha256 = ("n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
          "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
          "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
cred = "4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE="
put("scram", "rfc5802_sha1", b"\x00" + "\0".join(sha1 + (cred,)).encode())
put("scram", "rfc7677_sha256", b"\x01" + "\0".join(sha256 + ("W22ZaJ0SNY7soEsUEjb6gQ==",)).encode())
put("scram", "unknown_user", b"\x03" + "\0".join(sha256 + ("",)).encode())
put("scram", "wrong_hash_cred", b"\x05" + "\0".join(sha256 + ("=",)).encode())
put("scram", "authzid_ext", b"\x00" + "\0".join((
    "y,a=user@example.com,n=us=2Cer=3D,r=fyko+d2lbbFgONRv9qkxdawL,x=ext",
    "c=eSxhPXVzZXJAZXhhbXBsZS5jb20s,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,e=1,"
    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "Zm9vYmE=")).encode())
put("scram", "channel_binding", b"\x01" + "\0".join((
    "p=tls-unique,,n=user,r=abc", "", "QUJD")).encode())
put("scram", "utf8_user", b"\x01" + "\0".join((
    "n,,n=\u00e9l\u00e8ve,r=\u00ff", "c=biws,r=x,p=AAAA", "Zg==")).encode())

# JIDs, IDN included.
jids = {
    "bare": "alice@localhost", "full": "alice@localhost/laptop",
    "domain": "example.com", "domain_res": "example.com/res/with/slashes@and@ats",
    "idn": "J\u00fcrgen@M\u00dcNCHEN.example/Bal\u0131k",
    "idn_ace": "user@xn--mnchen-3ya.de", "ipv6": "x@[2001:DB8::1]/r",
    "ipv4": "x@192.0.2.1", "trailing_dot": "a@example.com./r",
    "fullwidth": "\uff41\uff4c\uff49\uff43\uff45@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
    "soft_hyphen": "\u00ad@example.com", "prohibited": "a b@example.com",
    "long_label": "a@" + "x" * 64 + ".com", "empty_local": "@example.com",
    "greek": "\u03a3\u03b9\u03c3\u03cd\u03c6\u03bf\u03c2@\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1.\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae/\u2163",
    "arabic_bidi": "\u0627\u0644\u0639\u0631\u0628\u064a\u0629@example.com",
}
for k, v in jids.items():
    put("jid", k, v)

# PROXY v1 and v2.
sig = b"\r\n\r\n\0\r\nQUIT\n"
put("proxy", "v1_tcp4", b"PROXY TCP4 192.0.2.1 10.0.0.1 50000 5222\r\n<?xml")
put("proxy", "v1_tcp6", b"PROXY TCP6 2001:db8::5 2001:db8::6 1234 5222\r\n")
put("proxy", "v1_unknown", b"PROXY UNKNOWN\r\n")
put("proxy", "v2_tcp4", sig + bytes([0x21, 0x11, 0, 12, 192, 0, 2, 1, 10, 0, 0, 1, 0xC3, 0x50, 0x14, 0x66]))
put("proxy", "v2_tcp6", sig + bytes([0x21, 0x21, 0, 36]) + bytes.fromhex(
    "20010db8000000000000000000000005" "20010db8000000000000000000000006") + bytes([4, 0xD2, 0x14, 0x66]))
put("proxy", "v2_local", sig + bytes([0x20, 0, 0, 0]))
put("proxy", "v2_tlv", sig + bytes([0x21, 0x11, 0, 17, 127, 0, 0, 1, 127, 0, 0, 1, 0x30, 0x39,
                                   0x14, 0x66, 4, 0, 2]) + b"hi")
put("proxy", "v2_unix", sig + bytes([0x21, 0x31, 0, 216]) + b"/tmp/a".ljust(108, b"\0") * 2)

# Stream management (XEP-0198): enable after bind, acknowledgements both ways, a stream
# resumed instead of bound (sm-enable answer 0, then sm-resume with state).
stream_seed("sm_enable", 0x04, [0, 0, 0], [HDR + PLAIN, HDR, BIND, SM_ENABLE, SM_TRAFFIC, SM_ENABLE, END])
stream_seed("sm_resume", 0x04, [6 << 3, 0, 0], [HDR + PLAIN, HDR, SM_RESUME, "<r xmlns='%s'/>" % SM, STANZAS, END])
stream_seed("sm_resume_failed", 0x04, [1 << 3, 0, 0], [HDR + PLAIN, HDR, SM_RESUME, BIND, SM_ENABLE, END])

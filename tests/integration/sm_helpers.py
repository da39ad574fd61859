"""The client side of XEP-0198 stream management (urn:xmpp:sm:3) over the raw test client,
shared by tests/integration/test_sm.py and tests/stack/test_stack_sm.py. No tests here.

An SMSession outlives the connections it is resumed over: it counts the stanzas its client
handled since <enable/> (the 'h' it acknowledges, XEP-0198 section 4) and the stanzas it
sent (what the server's 'h' must reach), keeps the resumption id and the full JID, and is
attached to each new connection with attach() (or resume()).
"""

import re
import time

import xmpp_client

from xmpp_client import (IQ_TAG, MESSAGE_TAG, NS_CLIENT, NS_STANZAS, PRESENCE_TAG,
                         StreamClosed, child_conditions, dump, q)

NS_SM = "urn:xmpp:sm:3"
MOD = 2 ** 32
STANZA_TAGS = (MESSAGE_TAG, PRESENCE_TAG, IQ_TAG)
_OUT_STANZA = re.compile(r"^\s*<(message|presence|iq)[\s/>]")


def sm(name):
    return q(NS_SM, name)


def body(el):
    return el.findtext(q(NS_CLIENT, "body"))


def is_sm(el, name):
    return el.tag == sm(name)


def sm_failed_conditions(el):
    """The condition names of an SM <failed/> (children in the stanzas namespace)."""
    return [c for c in child_conditions(el, NS_STANZAS) if c != "text"]


class SMSession:
    def __init__(self):
        self.id = None         # resumption id from <enabled id=.../>
        self.enabled = None    # the <enabled/> element
        self.handled = 0       # stanzas received since enable (mod 2^32)
        self.sent = 0          # stanzas sent since enable (mod 2^32)
        self.jid = None        # full JID of the session
        self.requests = 0      # <r/> received from the server
        self.auto_ack = False  # answer the server's <r/> at once
        self.counting = False
        self.c = None

    # ------------------------------------------------------------ the connection
    def attach(self, c):
        """Counts what `c` receives and sends from now on (wrapping its recv and send)."""
        self.c = c
        if getattr(c, "_sm_session", None) is self:
            return c
        if getattr(c, "_sm_session", None) is None:
            c._sm_orig = (c.recv, c.send_raw)
        c._sm_session = self
        recv, send_raw = c._sm_orig

        def counting_recv(timeout=None):
            el = recv(timeout)
            if self.counting and el.tag in STANZA_TAGS:
                self.handled = (self.handled + 1) % MOD
            elif el.tag == sm("r"):
                self.requests += 1
                if self.auto_ack:
                    self.ack()
            return el

        def counting_send_raw(data):
            if self.counting and _OUT_STANZA.match(data.decode("utf-8", "replace")):
                self.sent = (self.sent + 1) % MOD
            send_raw(data)

        c.recv = counting_recv
        c.send_raw = counting_send_raw
        return c

    # ------------------------------------------------------------ XEP-0198 verbs
    def enable(self, c, resume=True, max=None, timeout=5.0):
        """<enable/> on the bound client `c`; returns <enabled/> or <failed/>."""
        if self.c is not c:
            self.attach(c)
        attrs = " resume='true'" if resume else ""
        if max is not None:
            attrs += " max='%d'" % max
        c.send("<enable xmlns='%s'%s/>" % (NS_SM, attrs))
        el = c.wait_for(lambda e: is_sm(e, "enabled") or is_sm(e, "failed"), timeout,
                        "<enabled/> or <failed/>")
        if is_sm(el, "enabled"):
            self.enabled = el
            self.id = el.get("id")
            self.jid = c.jid
            self.handled = self.sent = 0
            self.counting = True
        return el

    def ack(self, h=None):
        """Sends <a h=.../> (our handled count unless h is given)."""
        self.c.send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.handled if h is None else h))

    def request_ack(self, timeout=5.0):
        """Sends <r/>; returns the server's h from the <a/> that answers it."""
        self.c.send("<r xmlns='%s'/>" % NS_SM)
        el = self.c.wait_for(lambda e: is_sm(e, "a"), timeout, "<a/> answering our <r/>")
        return int(el.get("h"))

    def wait_request(self, timeout=5.0):
        """Waits for the server's next <r/> (whatever arrives meanwhile is counted)."""
        before = self.requests
        timeout *= xmpp_client.TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        while self.requests == before:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no <r/> from the server within %.1fs" % timeout)
            try:
                el = self.c.recv(remaining)
            except TimeoutError:
                continue
            if el.tag != sm("r"):
                self.c.skipped.append(el)

    def resume(self, c, h=None, previd=None, timeout=5.0):
        """<resume/> on `c` (authenticated, not bound). Returns <resumed/> or <failed/>;
        after <resumed/> this session counts on `c` (its JID set to the session's)."""
        self.attach(c)
        was = self.counting
        self.counting = False   # stanzas of a failed resume are not ours
        h = self.handled if h is None else h
        c.send("<resume xmlns='%s' previd='%s' h='%d'/>"
               % (NS_SM, self.id if previd is None else previd, h))
        el = c.wait_for(lambda e: is_sm(e, "resumed") or is_sm(e, "failed"), timeout,
                        "<resumed/> or <failed/>")
        if is_sm(el, "resumed"):
            # What the server resends now is counted from the h we claimed (section 5).
            self.handled = h % MOD
            self.counting = was
            c.jid = self.jid
        else:
            self.counting = was
        return el


def auth_only(c, user, mech="SCRAM-SHA-256"):
    """Stream, STARTTLS, SASL and the stream restart, no bind. Returns the features."""
    c.open_stream()
    c.starttls()
    r = c.auth(user.localpart, user.password, mech)
    assert r == "success", "SASL of %s failed: %s" % (user.jid, r)
    return c.features


def drop(c):
    """Cuts the connection without </stream:stream> (a lost network)."""
    c.abort()


def messages_until(c, pred_done, timeout=10.0, what="messages"):
    """Reads until pred_done(list of received non-error messages) holds; returns the list."""
    got = []
    timeout *= xmpp_client.TIMEOUT_SCALE   # slow servers (valgrind) get longer
    deadline = time.monotonic() + timeout
    while not pred_done(got):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out waiting for %s; got %s" % (what, [body(m) for m in got]))
        try:
            el = c.recv(remaining)
        except TimeoutError:
            continue
        except StreamClosed as e:
            raise AssertionError("%s while waiting for %s; got %s"
                                 % (e, what, [body(m) for m in got])) from None
        if el.tag == MESSAGE_TAG and el.get("type") != "error":
            got.append(el)
        else:
            c.skipped.append(el)
    return got


def collect_messages(c, duration):
    """Every non-error message that arrives within `duration` seconds."""
    got = []
    deadline = time.monotonic() + duration
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return got
        try:
            el = c.recv(remaining)
        except TimeoutError:
            return got
        except StreamClosed:
            return got
        if el.tag == MESSAGE_TAG and el.get("type") != "error":
            got.append(el)


def failed_h_too_high(el):
    """The <handled-count-too-high/> child of a <failed/> or stream error, or None."""
    return el.find(sm("handled-count-too-high"))


def describe(el):
    return dump(el)

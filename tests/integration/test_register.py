"""In-band registration (XEP-0077) with invitation tokens (XEP-0401, XEP-0445) and the
in-band password change (XEP-0077 3.3): slixmpp's xep_0077 plugin end to end, and raw XML
for every refusal and its named error."""

import asyncio
import re
import time
from pathlib import Path

import pytest

from conftest import REDIS_PREFIX, Stack, User, unique_name
from xmpp_client import (NS_CLIENT, NS_STANZAS, SASLError, XMPPClient, dump, q,
                         stanza_error_condition)
import slix_helpers

NS_REGISTER = "jabber:iq:register"
NS_FEATURE = "http://jabber.org/features/iq-register"
NS_XDATA = "jabber:x:data"
NS_PARS = "urn:xmpp:pars:0"
NS_IBR_TOKEN = "urn:xmpp:ibr-token:0"


class RegStack(Stack):
    """A stack of its own (Redis, router, frontend) with extra config lines."""

    def __init__(self, tmp, extra):
        super().__init__(tmp)
        self.extra = extra

    def write_config(self):
        super().write_config()
        with open(self.config, "a") as f:
            f.write(self.extra)


def _stack(tmp_path_factory, name, extra):
    s = RegStack(tmp_path_factory.mktemp(name), extra)
    try:
        s.start()
    except BaseException:
        print("\n".join(s.stop()))
        raise
    return s


@pytest.fixture(scope="module")
def open_stack(tmp_path_factory):
    """Registration open to anyone (the per-address limit high enough for this module)."""
    s = _stack(tmp_path_factory, "regopen",
               "allow_registration = true\nregister_limit_per_address = 1000\n")
    yield s
    problems = s.stop()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def limited_stack(tmp_path_factory):
    s = _stack(tmp_path_factory, "reglimit",
               "allow_registration = true\nregister_limit_per_address = 2\n"
               "register_limit_window = 3600\n")
    yield s
    problems = s.stop()
    assert not problems, "\n".join(problems)


def connect(st, source=None):
    """A client on `st` with its stream open and TLS on; returns (client, features)."""
    c = XMPPClient(st.port, domain=st.domain, cafile=st.cafile, source=source)
    c.open_stream()
    return c, c.starttls()


def form_set(username=None, password=None):
    parts = []
    if username is not None:
        parts.append("<username>%s</username>" % username)
    if password is not None:
        parts.append("<password>%s</password>" % password)
    return "<query xmlns='%s'>%s</query>" % (NS_REGISTER, "".join(parts))


def register(c, username, password):
    return c.iq("set", form_set(username, password))


def error_of(res):
    assert res.get("type") == "error", "expected an error, got %s" % dump(res)
    return stanza_error_condition(res)


def error_text(res):
    t = res.find("%s/%s" % (q(NS_CLIENT, "error"), q(NS_STANZAS, "text")))
    return t.text if t is not None else ""


def can_login(st, user, password):
    c = XMPPClient(st.port, domain=st.domain, cafile=st.cafile)
    try:
        c.login(user, password)
        return True
    except SASLError:
        return False
    finally:
        c.close()


def invite(st, *args):
    r = st.ctl("invite", *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    token, uri = lines[0], lines[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", token), r.stdout
    assert uri == "xmpp:%s?register;preauth=%s" % (st.domain, token)
    return token


def preauth(c, token):
    # Addressed to the domain, as XEP-0445's example does.
    return c.iq("set", "<preauth xmlns='%s' token='%s'/>" % (NS_PARS, token), to=c.domain)


# ------------------------------------------------------------------ slixmpp

def _slixmpp():
    return pytest.importorskip("slixmpp")


def run(coro, timeout=30.0):
    return slix_helpers.run(coro, timeout)


def test_slixmpp_registers_changes_its_password_adds_a_contact_and_deletes_itself(open_stack):
    """The issue's "done when", as a new user would go: slixmpp registers, logs in, changes
    its password, adds a contact; after a new login with the new password it deletes its
    account (XEP-0077 3.2); the contact's roster shows the subscription gone, and the
    name cannot be registered again."""
    sx = _slixmpp()
    st = open_stack
    name, pw, newpw = unique_name("slixreg"), "first-pass-1", "second-pass-2"
    contact = User(unique_name("regfriend"), "friend-pass-1")
    r = st.ctl("adduser", contact.jid, contact.password)
    assert r.returncode == 0, r.stderr
    friend = XMPPClient(st.port, domain=st.domain, cafile=st.cafile)
    friend.login(contact.localpart, contact.password, resource="f")
    friend.roster_get()
    friend.im_presence()
    me = "%s@%s" % (name, st.domain)

    class Registrant(sx.ClientXMPP):
        def __init__(self, password, register):
            super().__init__("%s/reg" % me, password)
            slix_helpers.without_channel_binding(self)
            self.ca_certs = Path(st.cafile)
            # slixmpp 1.8 holds back every iq until the session has started, the
            # registration iqs of its own xep_0077 plugin included: let them go out.
            self._always_send_everything = True
            self.started = self.loop.create_future()
            self.registered = self.loop.create_future()
            self.gone = self.loop.create_future()
            self.stream_errors = []
            self.register_plugin("xep_0030")
            self.register_plugin("xep_0004")
            self.register_plugin("xep_0066")
            self.register_plugin("xep_0077", {"create_account": register})
            if register:
                self.add_event_handler("register", self._register)
            else:
                self.registered.set_result(False)   # nothing to wait for
            self.add_event_handler("session_start", self._start)
            self.add_event_handler("disconnected", self._gone)
            self.add_event_handler("stream_error", self.stream_errors.append)
            for ev in ("failed_auth", "failed_all_auth", "connection_failed"):
                self.add_event_handler(ev, self._fail(ev))

        def _fail(self, ev):
            def f(data=None):
                for fut in (self.registered, self.started):
                    if not fut.done():
                        fut.set_exception(AssertionError("%s: %r" % (ev, data)))
            return f

        async def _register(self, form):
            # The form the server sent (XEP-0077 3.1): the fields it asks for.
            reg = form["register"]
            assert "username" in reg["fields"] and "password" in reg["fields"], form
            iq = self.Iq()
            iq["type"] = "set"
            iq["register"]["username"] = self.boundjid.user
            iq["register"]["password"] = self.password
            try:
                await iq.send(timeout=10)
                self.registered.set_result(True)
            except sx.exceptions.IqError as e:
                self.registered.set_exception(AssertionError(str(e.iq)))
                self.disconnect()

        async def _start(self, _ev):
            await self.get_roster(timeout=10)
            self.send_presence()
            if not self.started.done():
                self.started.set_result(True)

        def _gone(self, _reason=None):
            if not self.gone.done():
                self.gone.set_result(True)
            for fut in (self.registered, self.started):
                if not fut.done():
                    fut.set_exception(AssertionError("disconnected"))

    async def first_session():
        c = Registrant(pw, True)
        c.connect(("127.0.0.1", st.port), force_starttls=True, disable_starttls=False)
        try:
            await c.registered
            # The account it just made is the one it logs in with (SASL, same stream).
            await c.started
            assert c.boundjid.bare == me
            info = await c["xep_0030"].get_info(jid=st.domain, timeout=5)
            assert NS_REGISTER in info["disco_info"]["features"]
            await c["xep_0077"].change_password(newpw, jid=st.domain, timeout=10)
            c.send_presence_subscription(pto=contact.jid, ptype="subscribe")
            await asyncio.sleep(0.5)
        finally:
            c.disconnect(wait=2.0)
            await asyncio.wait_for(c.gone, 8)

    run(first_session())
    # Effective on the next login: the old password fails, the new one works.
    assert not can_login(st, name, pw)
    assert can_login(st, name, newpw)
    # The contact approves the request that waited for it.
    friend.im_wait_presence(type_="subscribe", sender=me, timeout=10)
    friend.im_presence(to=me, type_="subscribed")
    friend.wait_roster_push(me, lambda it: it["subscription"] == "from", timeout=10)

    async def second_session():
        c = Registrant(newpw, False)
        c.connect(("127.0.0.1", st.port), force_starttls=True, disable_starttls=False)
        await c.started
        assert c.client_roster[contact.jid]["subscription"] == "to"
        res = await c["xep_0077"].cancel_registration(jid=st.domain, timeout=10)
        assert res["type"] == "result"
        await asyncio.wait_for(c.gone, 10)
        # After the result, the stream ended with an error saying why (XEP-0077 3.2).
        assert [e["condition"] for e in c.stream_errors] == ["not-authorized"], c.stream_errors

    run(second_session())
    # The contact's roster shows the subscription gone, pushed to the client.
    friend.im_wait_presence(type_="unsubscribe", sender=me, timeout=10)
    friend.wait_roster_push(me, lambda it: it["subscription"] == "none", timeout=10)
    friend.close()
    # The same name cannot be registered again, in-band or by the operator.
    c, _ = connect(st)
    try:
        res = register(c, name, "third-pass-3")
        assert error_of(res) == ("cancel", "conflict"), dump(res)
    finally:
        c.close()
    r = st.ctl("adduser", me, "third-pass-3")
    assert r.returncode == 1 and "tombstone" in r.stderr, r.stderr
    assert not can_login(st, name, newpw)


# ------------------------------------------------------------------ raw XML, open server

def test_features_and_form(open_stack):
    st = open_stack
    c = XMPPClient(st.port, domain=st.domain, cafile=st.cafile)
    try:
        before = c.open_stream()
        # TLS is configured (and required): registration is offered only under TLS.
        assert before.find(q(NS_FEATURE, "register")) is None
        after = c.starttls()
        assert after.find(q(NS_FEATURE, "register")) is not None, dump(after)
        assert after.find(q(NS_IBR_TOKEN, "register")) is not None, dump(after)
        res = c.iq("get", "<query xmlns='%s'/>" % NS_REGISTER)
        assert res.get("type") == "result", dump(res)
        query = res.find(q(NS_REGISTER, "query"))
        assert query is not None
        assert query.find(q(NS_REGISTER, "instructions")).text
        assert query.find(q(NS_REGISTER, "username")) is not None
        assert query.find(q(NS_REGISTER, "password")) is not None
        x = query.find(q(NS_XDATA, "x"))
        assert x is not None and x.get("type") == "form"
        fields = {f.get("var"): f for f in x.findall(q(NS_XDATA, "field"))}
        assert fields["FORM_TYPE"].get("type") == "hidden"
        assert fields["FORM_TYPE"].findtext(q(NS_XDATA, "value")) == NS_REGISTER
        assert fields["username"].find(q(NS_XDATA, "required")) is not None
        assert fields["password"].get("type") == "text-private"
    finally:
        c.close()


def test_data_form_registration_and_conflicts(open_stack):
    st = open_stack
    name = unique_name("xform")
    c, _ = connect(st)
    try:
        res = c.iq("set", "<query xmlns='%s'><x xmlns='%s' type='submit'>"
                          "<field var='FORM_TYPE'><value>%s</value></field>"
                          "<field var='username'><value>%s</value></field>"
                          "<field var='password'><value>form-pass-1</value></field>"
                          "</x></query>" % (NS_REGISTER, NS_XDATA, NS_REGISTER, name))
        assert res.get("type") == "result", dump(res)
        # The same name again (its case folded by nodeprep: the same account).
        assert error_of(register(c, name.upper(), "other-pass-1")) == ("cancel", "conflict")
    finally:
        c.close()
    assert can_login(st, name, "form-pass-1")
    # A name xmppctl adduser made is taken too, and xmppctl refuses an in-band one.
    u = st.new_user("ctl")
    c, _ = connect(st)
    try:
        assert error_of(register(c, u.localpart, "whatever-1")) == ("cancel", "conflict")
    finally:
        c.close()
    r = st.ctl("adduser", "%s@%s" % (name, st.domain), "x-pass-123")
    assert r.returncode != 0 and "exists" in r.stderr


def test_tombstoned_name_is_refused(open_stack):
    st = open_stack
    name = unique_name("gone")
    st.redis.command("SET", "%stombstone:{%s@%s}" % (REDIS_PREFIX, name, st.domain), "1700000000")
    c, _ = connect(st)
    try:
        assert error_of(register(c, name, "tomb-pass-1")) == ("cancel", "conflict")
    finally:
        c.close()
    assert st.redis.command("EXISTS", "%sacct:{%s@%s}" % (REDIS_PREFIX, name, st.domain)) == 0


@pytest.mark.parametrize("username,password,why", [
    (None, "good-pass-1", "required"),
    ("", "good-pass-1", "required"),
    ("{name}", None, "required"),
    ("{name}", "", "required"),
    ("bad name", "good-pass-1", "username"),
    ("bad@name", "good-pass-1", "username"),
    ("x" * 1100, "good-pass-1", "username"),
    ("{name}", "short", "too short"),
    ("{name}", "p" * 1100, "too long"),
    ("{name}", "tab\there-pass", "SASLprep"),
    ("{name}", "del\u007fhere-pass", "SASLprep"),
    ("{name}", "private\ue000use-pass", "SASLprep"),
])
def test_bad_form_is_not_acceptable(open_stack, username, password, why):
    st = open_stack
    name = unique_name("bad")
    username = None if username is None else username.replace("{name}", name)
    c, _ = connect(st)
    try:
        res = register(c, username, password)
        assert error_of(res) == ("modify", "not-acceptable")
        assert why.lower() in error_text(res).lower(), dump(res)
    finally:
        c.close()
    assert st.redis.command("EXISTS", "%sacct:{%s@%s}" % (REDIS_PREFIX, name, st.domain)) == 0


def test_attempts_per_connection_are_bounded(open_stack):
    c, _ = connect(open_stack)
    try:
        for _ in range(5):
            assert error_of(register(c, "bad name", "x")) == ("modify", "not-acceptable")
        c.send("<iq type='get' id='six'><query xmlns='%s'/></iq>" % NS_REGISTER)
        c.expect_stream_error("policy-violation")
    finally:
        c.close()


def test_password_change_rules(open_stack):
    st = open_stack
    u = st.new_user("pwc", password="old-pass-123")
    c = XMPPClient(st.port, domain=st.domain, cafile=st.cafile)
    try:
        c.login(u.localpart, u.password)
        res = c.iq("get", "<query xmlns='%s'/>" % NS_REGISTER)
        assert res.get("type") == "result", dump(res)
        query = res.find(q(NS_REGISTER, "query"))
        assert query.find(q(NS_REGISTER, "registered")) is not None
        assert query.findtext(q(NS_REGISTER, "username")) == u.localpart
        other = st.new_user("pwo")
        assert error_of(c.iq("set", form_set(other.localpart, "new-pass-123"))) == \
            ("modify", "not-authorized")
        assert error_of(c.iq("set", form_set(u.localpart, "short"))) == ("modify", "not-acceptable")
        assert error_of(c.iq("set", form_set(None, "new-pass-123"))) == ("modify", "bad-request")
        assert error_of(c.iq("set", form_set(u.localpart, "new\u007fpass"))) == \
            ("modify", "not-acceptable")
        res = c.iq("set", form_set(u.localpart, "new-pass-123"))
        assert res.get("type") == "result", dump(res)
        # One change per session every few seconds: the key derivation runs on the router.
        assert error_of(c.iq("set", form_set(u.localpart, "newer-pass-123"))) == \
            ("wait", "resource-constraint")
    finally:
        c.close()
    assert can_login(st, u.localpart, "new-pass-123")
    assert not can_login(st, u.localpart, "old-pass-123")
    assert can_login(st, other.localpart, other.password)


def test_rate_limit_per_address(limited_stack):
    st = limited_stack
    for _ in range(2):
        c, _ = connect(st)
        try:
            res = register(c, unique_name("rl"), "limit-pass-1")
            assert res.get("type") == "result", dump(res)
        finally:
            c.close()
    c, _ = connect(st)
    name = unique_name("rl")
    try:
        res = register(c, name, "limit-pass-1")
        assert error_of(res) == ("wait", "resource-constraint")
    finally:
        c.close()
    # Another address is counted on its own.
    c, _ = connect(st, source="127.0.0.2")
    try:
        res = register(c, name, "limit-pass-1")
        assert res.get("type") == "result", dump(res)
    finally:
        c.close()
    assert can_login(st, name, "limit-pass-1")


def test_an_address_over_its_limit_is_locked_out_before_key_derivation(limited_stack):
    """A refusal for register_limit_per_address counts as a failed authentication of the
    address on the frontend: with auth_failures_per_ip = 1 the next request is refused
    there at once (no PBKDF2 for it), until auth_backoff has passed."""
    st = limited_stack
    fe = st.start_extra_frontend(frontend_name="fe-reglock", auth_failures_per_ip=1,
                                 auth_backoff=600)
    try:
        texts = []
        for _ in range(4):
            c = XMPPClient(fe.port, domain=st.domain, cafile=st.cafile, source="127.0.0.3")
            try:
                c.open_stream()
                c.starttls()
                res = register(c, unique_name("lock"), "lock-pass-12")
                if res.get("type") == "error":
                    assert error_of(res) == ("wait", "resource-constraint"), dump(res)
                    texts.append(error_text(res))
            finally:
                c.close()
        assert "Too many registrations from your address; try again later" in texts, texts
        assert texts[-1] == "Too many attempts from your address; try again later", texts
    finally:
        problems = fe.stop()
    assert not problems, problems


# ------------------------------------------------------------------ closed server, invitations

def test_closed_registration_is_service_unavailable(stack):
    c, features = connect(stack)
    try:
        assert features.find(q(NS_FEATURE, "register")) is None, dump(features)
        assert features.find(q(NS_IBR_TOKEN, "register")) is not None, dump(features)
        name = unique_name("closed")
        assert error_of(c.iq("get", "<query xmlns='%s'/>" % NS_REGISTER)) == \
            ("cancel", "service-unavailable")
        assert error_of(register(c, name, "closed-pass-1")) == ("cancel", "service-unavailable")
    finally:
        c.close()
    assert not can_login(stack, name, "closed-pass-1")


def test_invitation_registers_one_account(stack):
    token = invite(stack)
    name, name2 = unique_name("inv"), unique_name("inv")
    # Two clients both hold the valid token; only the first registration takes it.
    c1, _ = connect(stack)
    c2, _ = connect(stack)
    try:
        assert preauth(c1, token).get("type") == "result"
        assert preauth(c2, token).get("type") == "result"
        res = c1.iq("get", "<query xmlns='%s'/>" % NS_REGISTER)
        assert res.get("type") == "result", dump(res)
        # A taken name does not use the token up.
        assert error_of(register(c1, stack.probe.localpart, "invite-pass-1")) == \
            ("cancel", "conflict")
        assert register(c1, name, "invite-pass-1").get("type") == "result"
        assert error_of(register(c2, name2, "invite-pass-2")) == ("cancel", "item-not-found")
    finally:
        c1.close()
        c2.close()
    assert can_login(stack, name, "invite-pass-1")
    assert not can_login(stack, name2, "invite-pass-2")
    # Used: refused at preauth too.
    c, _ = connect(stack)
    try:
        res = preauth(c, token)
        assert error_of(res) == ("cancel", "item-not-found")
        assert error_of(register(c, name2, "invite-pass-2")) == ("cancel", "service-unavailable")
    finally:
        c.close()


def test_invitation_expires(stack):
    token = invite(stack, "--ttl", "1")
    # Stored with its expiry (-2: already gone on a slow machine; -1 would be none).
    pttl = stack.redis.command("PTTL", "%sinvite:%s" % (REDIS_PREFIX, token))
    assert pttl <= 1000 and pttl != -1
    time.sleep(1.5)
    c, _ = connect(stack)
    try:
        assert error_of(preauth(c, token)) == ("cancel", "item-not-found")
        assert error_of(preauth(c, "no/such token")) == ("cancel", "item-not-found")
    finally:
        c.close()


def test_presented_invitation_outlives_its_expiry(stack):
    """XEP-0445 section 5: expiry is checked when the token is presented; the registration
    that follows does not fail on it."""
    token = invite(stack, "--ttl", "2")
    name = unique_name("late")
    c, _ = connect(stack)
    try:
        assert preauth(c, token).get("type") == "result"
        time.sleep(2.5)
        assert register(c, name, "late-pass-12").get("type") == "result"
    finally:
        c.close()
    assert can_login(stack, name, "late-pass-12")


def test_presenting_an_invitation_again_does_not_keep_it_alive(stack):
    """The grace a presented token gets is given once: presenting it over and over does
    not let it outlive its expiry for ever."""
    token = invite(stack, "--ttl", "2")
    key = "%sinvite:%s" % (REDIS_PREFIX, token)
    c, _ = connect(stack)
    try:
        assert preauth(c, token).get("type") == "result"
        assert stack.redis.command("PTTL", key) > 60000       # the grace, given once
        stack.redis.command("PEXPIRE", key, 1500)              # as if the grace ran out
        assert preauth(c, token).get("type") == "result"
        assert 0 < stack.redis.command("PTTL", key) <= 1500    # not given again
    finally:
        c.close()


def test_invite_default_ttl_and_bad_arguments(stack):
    token = invite(stack)
    ttl = stack.redis.command("TTL", "%sinvite:%s" % (REDIS_PREFIX, token))
    assert 604000 < ttl <= 604800
    for args in (["--ttl"], ["--ttl", "0"], ["--ttl", "abc"], ["extra"]):
        r = stack.ctl("invite", *args)
        assert r.returncode != 0, args


def test_registration_needs_tls_first(open_stack):
    c = XMPPClient(open_stack.port, domain=open_stack.domain, cafile=open_stack.cafile)
    try:
        c.open_stream()
        c.send("<iq type='get' id='r1'><query xmlns='%s'/></iq>" % NS_REGISTER)
        c.expect_stream_error("not-authorized")
    finally:
        c.close()

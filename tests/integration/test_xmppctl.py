"""xmppctl: account administration against the same Redis the server uses."""

import base64

import pytest

from conftest import REDIS_PREFIX, free_port, unique_name
from xmpp_client import XMPPClient


def try_login(stack, localpart, password, mech="SCRAM-SHA-256"):
    """'success' or the SASL failure condition."""
    c = XMPPClient(stack.port, cafile=stack.cafile)
    try:
        c.open_stream()
        c.starttls()
        return c.auth(localpart, password, mech)
    finally:
        c.close()


def users_list(stack):
    r = stack.ctl("users")
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_adduser_with_password_argument_and_login(stack):
    name = unique_name("ctl")
    r = stack.ctl("adduser", name + "@localhost", "s3cret-arg")
    assert r.returncode == 0, r.stderr
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        assert try_login(stack, name, "s3cret-arg", mech) == "success", mech
    assert try_login(stack, name, "s3cret-ar", "PLAIN") == "not-authorized"


def test_adduser_password_from_stdin(stack):
    name = unique_name("stdin")
    r = stack.ctl("adduser", name + "@localhost", input="from stdin pw\n")
    assert r.returncode == 0, r.stderr
    assert try_login(stack, name, "from stdin pw") == "success"
    # The trailing newline is not part of the password.
    assert try_login(stack, name, "from stdin pw\n", "PLAIN") == "not-authorized"


def test_adduser_existing_account(stack, new_user):
    u = new_user()
    r = stack.ctl("adduser", u.jid, "another")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "exists" in r.stderr, r.stderr
    # The original password is untouched.
    assert try_login(stack, u.localpart, u.password) == "success"
    assert try_login(stack, u.localpart, "another") == "not-authorized"


def test_adduser_normalises_jid_case(stack):
    name = unique_name("case")
    r = stack.ctl("adduser", name.upper() + "@LOCALHOST", "pw-case")
    assert r.returncode == 0, r.stderr
    assert name + "@localhost" in users_list(stack)
    assert try_login(stack, name, "pw-case") == "success"
    r = stack.ctl("adduser", name + "@localhost", "pw2")
    assert r.returncode == 1 and "exists" in r.stderr, r.stderr


@pytest.mark.parametrize("jid", [
    "@localhost",
    "user@",
    "al<ice@localhost",
    "sp ace@localhost",
    ("x" * 1024) + "@localhost",
    "",
], ids=["no-local", "no-domain", "lt", "space", "too-long", "empty"])
def test_adduser_invalid_jid(stack, jid):
    r = stack.ctl("adduser", jid, "pw")
    assert r.returncode == 1, (jid, r.returncode, r.stderr)
    assert "invalid JID" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd,says", [("passwd", "invalid JID"), ("deluser", "not a bare JID")])
def test_invalid_jid_for_other_commands(stack, cmd, says):
    args = [cmd, "bad<jid@localhost"] + (["pw"] if cmd == "passwd" else [])
    r = stack.ctl(*args)
    assert r.returncode == 1 and says in r.stderr, (r.returncode, r.stderr)


def test_passwd_changes_password(stack, new_user):
    u = new_user()
    r = stack.ctl("passwd", u.jid, "brand-new-pw")
    assert r.returncode == 0, r.stderr
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        assert try_login(stack, u.localpart, u.password, mech) == "not-authorized", mech
        assert try_login(stack, u.localpart, "brand-new-pw", mech) == "success", mech


def test_passwd_from_stdin(stack, new_user):
    u = new_user()
    r = stack.ctl("passwd", u.jid, input="stdin-new-pw\n")
    assert r.returncode == 0, r.stderr
    assert try_login(stack, u.localpart, "stdin-new-pw") == "success"
    assert try_login(stack, u.localpart, u.password) == "not-authorized"


def test_passwd_missing_account(stack):
    r = stack.ctl("passwd", unique_name("ghost") + "@localhost", "pw")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "no such account" in r.stderr, r.stderr


def test_deluser(stack, new_user):
    u = new_user()
    assert u.jid in users_list(stack)
    r = stack.ctl("deluser", u.jid)
    assert r.returncode == 0, r.stderr
    assert u.jid not in users_list(stack)
    assert try_login(stack, u.localpart, u.password) == "not-authorized"
    assert try_login(stack, u.localpart, u.password, "PLAIN") == "not-authorized"
    # The tombstone keeps the name from someone new, unless the operator insists.
    r = stack.ctl("adduser", u.jid, "reborn")
    assert r.returncode == 1 and "tombstone" in r.stderr, r.stderr
    r = stack.ctl("adduser", "--ignore-tombstone", u.jid, "reborn")
    assert r.returncode == 0, r.stderr
    assert try_login(stack, u.localpart, "reborn") == "success"


def test_deluser_missing_account(stack):
    r = stack.ctl("deluser", unique_name("ghost") + "@localhost")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "no such account" in r.stderr, r.stderr


def test_users_sorted_bare_jids(stack):
    names = sorted(unique_name("list") for _ in range(3))
    for n in reversed(names):
        assert stack.ctl("adduser", n + "@localhost", "pw").returncode == 0
    lines = users_list(stack)
    assert lines == sorted(lines), lines
    for n in names:
        assert n + "@localhost" in lines, lines
    assert all(l.endswith("@localhost") and "/" not in l for l in lines), lines
    assert len(lines) == len(set(lines)), lines


def test_redis_unreachable(stack):
    port = free_port()
    for args in (["users"], ["adduser", unique_name("nr") + "@localhost", "pw"]):
        r = stack.ctl(*args, env={"redis_port": port})
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert "Redis" in r.stderr and "127.0.0.1:%d" % port in r.stderr, r.stderr


def test_env_overrides_config_file(stack):
    # Same Redis reached through an XMPP_REDIS_PREFIX override: a different namespace.
    name = unique_name("env") + "@localhost"
    try:
        r = stack.ctl("adduser", name, "pw", env={"redis_prefix": "otherprefix:"})
        assert r.returncode == 0, r.stderr
        assert name not in users_list(stack)
        r = stack.ctl("users", env={"redis_prefix": "otherprefix:"})
        assert r.returncode == 0 and name in r.stdout.splitlines(), (r.stdout, r.stderr)
        assert stack.redis.command("KEYS", "otherprefix:*"), \
            "nothing stored under the overridden prefix"
    finally:
        for k in stack.redis.command("KEYS", "otherprefix:*"):
            stack.redis.command("DEL", k)


def test_password_never_stored_in_redis(stack):
    password = "Plaintext-Canary-%s" % unique_name("")
    name = unique_name("canary")
    assert stack.ctl("adduser", name + "@localhost", password).returncode == 0
    assert try_login(stack, name, password) == "success"
    new_password = "Second-Canary-%s" % unique_name("")
    assert stack.ctl("passwd", name + "@localhost", new_password).returncode == 0
    dump = stack.redis.dump_all()
    assert dump, "Redis is empty?"
    assert any(name.encode() in k or name.encode() in v for k, v in dump.items()), \
        "the account is not in this Redis at all"
    for pw in (password, new_password):
        forms = [pw.encode(), base64.b64encode(pw.encode()), pw.encode().hex().encode(),
                 pw.lower().encode()]
        for key, value in dump.items():
            for form in forms:
                assert form not in key and form not in value, \
                    "password (%r) found in Redis key %r" % (form, key)


def test_redis_keys_use_configured_prefix(stack, new_user):
    new_user()
    keys = stack.redis.command("KEYS", "*")
    assert keys
    bad = [k for k in keys if not k.startswith(REDIS_PREFIX.encode())]
    assert not bad, "keys outside the configured prefix %r: %r" % (REDIS_PREFIX, bad)

"""Shared by the tests that drive slixmpp (Debian's python3-slixmpp): running one scenario
coroutine on a loop of its own. This module holds no tests itself."""

import asyncio


def run(coro, timeout):
    """Runs `coro` to its end (at most `timeout` seconds) on a new event loop, then ends the
    background tasks slixmpp leaves behind (send queue, filters) before closing the loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        pending = asyncio.all_tasks(loop)
        for t in pending:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


# Non-PLUS mechanisms slixmpp may choose once channel binding is off.
PLAIN_SCRAM_MECHS = {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}


def without_channel_binding(client):
    """Makes a slixmpp client authenticate as one without channel binding (gs2 flag 'n').

    Debian's slixmpp 1.8 binds SCRAM only with tls-unique (all CPython's ssl module gives),
    which is not defined on TLS 1.3 (RFC 9266) and which the server does not offer; and for
    a non-PLUS mechanism it sends the flag 'y' whenever it holds TLS, even where the server
    offered -PLUS, which RFC 5802 section 6 makes the server refuse (downgrade protection;
    test_channel_binding.py). So its channel binding data are dropped (flag 'n'), and
    unless the caller chose mechanisms, it picks among the non-PLUS ones."""
    fm = client["feature_mechanisms"]
    default = fm.sasl_callback

    def credentials(required, optional):
        out = default(required, optional)
        if "channel_binding" in out:
            out["channel_binding"] = b""
        return out
    fm.sasl_callback = credentials
    if not fm.use_mech and not fm.use_mechs:
        fm.use_mechs = set(PLAIN_SCRAM_MECHS)
    return client

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

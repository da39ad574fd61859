"""The slixmpp client the interop tests build on (Debian's python3-slixmpp): SCRAM without
channel binding (slix_helpers.without_channel_binding), trust in exactly the test
certificate, a `started` future that fails with the reason when the login does, a `gone`
future, and a record of the events a test names, waited for with `wait`. Import it after
pytest.importorskip("slixmpp"). This module holds no tests itself."""

import asyncio
import time
from pathlib import Path

import slixmpp

import slix_helpers

STEP = 15.0   # default bound of one wait inside a scenario


class RecordingClient(slixmpp.ClientXMPP):
    """`plugins` are registered, every event named in `record` is kept as (name, stanza)
    for `wait`; `on_session` (a coroutine, overridable) runs at session start before
    `started` is set: by default it sends initial presence."""

    FAIL_EVENTS = ("failed_auth", "failed_all_auth", "no_auth", "connection_failed",
                   "ssl_invalid_chain", "stream_error")

    def __init__(self, jid, password, cafile, plugins=(), record=(), mech="SCRAM-SHA-256"):
        super().__init__(jid, password, sasl_mech=mech)
        slix_helpers.without_channel_binding(self)
        self.ca_certs = Path(cafile)
        for p in plugins:
            self.register_plugin(p)
        self.started = self.loop.create_future()
        self.gone = self.loop.create_future()
        self.log = []                        # (event name, stanza)
        self.changed = asyncio.Event()
        for ev in record:
            self.add_event_handler(ev, self._recorder(ev))
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("disconnected", self._on_disconnected)
        for ev in self.FAIL_EVENTS:
            self.add_event_handler(ev, self._failer(ev))

    async def on_session(self):
        self.send_presence()

    async def _session_start(self, _event):
        try:
            await self.on_session()
            if not self.started.done():
                self.started.set_result(True)
        except Exception as e:  # noqa: BLE001 - the test learns it through `started`
            if not self.started.done():
                self.started.set_exception(e)

    def _recorder(self, name):
        def record(stanza):
            self.log.append((name, stanza))
            self.changed.set()
        return record

    def _failer(self, name):
        def fail(data=None):
            if not self.started.done():
                self.started.set_exception(AssertionError("%s: %s: %r" % (self.boundjid, name, data)))
        return fail

    def _on_disconnected(self, _reason=None):
        if not self.gone.done():
            self.gone.set_result(True)
        if not self.started.done():
            self.started.set_exception(AssertionError("%s disconnected before session start"
                                                      % self.boundjid))

    async def wait(self, name, pred=lambda s: True, timeout=STEP, what=None):
        """The first recorded event `name` whose stanza satisfies pred (consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (n, st) in enumerate(self.log):
                if n == name and pred(st):
                    del self.log[i]
                    return st
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("%s: no %s (%s) within %.0fs; seen: %s"
                                     % (self.boundjid, name, what or "", timeout,
                                        [(n, str(s)[:300]) for n, s in self.log]))
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


async def close_all(clients):
    """Disconnects every client and waits (10 s at most) until all are gone."""
    for c in clients:
        if not c.gone.done():
            c.disconnect(wait=2.0)
    await asyncio.wait_for(asyncio.gather(*(c.gone for c in clients), return_exceptions=True), 10)

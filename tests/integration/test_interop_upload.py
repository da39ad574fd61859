"""XEP-0363 with a real client library: Debian's python3-slixmpp 1.8 and its xep_0363
plugin (which finds the service through disco#items, reads max-file-size from its
disco#info, asks for a slot and PUTs with the headers the slot names, over aiohttp). The
uploader sends the GET URL to a contact logged in on another frontend, who downloads it:
the bytes must be the same.

slixmpp 1.8.3's discovery helper (xep_0030 get_info_from_domain) hands coroutines to
asyncio.wait, which Python 3.11 refuses; the plugin's find_upload_service is therefore
replaced by the same walk done with xep_0030's get_items and get_info (what the helper
means to do): disco#items of the domain, disco#info of each item, the first one with the
feature wins. Everything else is the plugin's own code."""

import asyncio
import io
import os
import urllib.request

import pytest
import slix_helpers

slixmpp = pytest.importorskip("slixmpp")
pytest.importorskip("aiohttp")  # xep_0363's HTTP client (python3-aiohttp)

from conftest import UPLOAD_MAX_SIZE  # noqa: E402
from slix_client import RecordingClient  # noqa: E402

TIMEOUT = 60.0
STEP = 15.0


class Uploader(RecordingClient):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile, plugins=("xep_0030", "xep_0004", "xep_0363"))
        self["xep_0363"].find_upload_service = self._find_upload_service

    async def _find_upload_service(self, domain=None, **kw):
        items = await self["xep_0030"].get_items(jid=domain or self.boundjid.domain,
                                                 timeout=STEP)
        for item in items["disco_items"]["items"]:
            info = await self["xep_0030"].get_info(jid=item[0], timeout=STEP)
            if "urn:xmpp:http:upload:0" in info["disco_info"]["features"]:
                return info
        return None


def test_slixmpp_uploads_and_a_contact_on_another_frontend_downloads(
        stack, login, new_user, extra_frontend, upload_server):
    ua, ub = new_user("slixup"), new_user("slixdown")
    fe2 = extra_frontend()
    b = login(ub, port=fe2.port)
    data = os.urandom(300000)
    assert len(data) < UPLOAD_MAX_SIZE

    async def scenario():
        a = Uploader("%s/slix" % ua.jid, ua.password, stack.cafile)
        a.connect(("127.0.0.1", stack.port), force_starttls=True, disable_starttls=False)
        try:
            await asyncio.wait_for(a.started, STEP)
            url = await a["xep_0363"].upload_file(
                "picture.png", size=len(data), input_file=io.BytesIO(data),
                content_type="image/png", timeout=STEP)
            a.send_message(mto=ub.jid, mbody=url, mtype="chat")
            return url
        finally:
            a.disconnect(wait=2.0)
            await asyncio.wait_for(a.gone, 10)

    url = slix_helpers.run(scenario(), TIMEOUT)
    assert url.startswith(upload_server.url + "/") and url.endswith("/picture.png")
    got = b.wait_message(url)
    assert got is not None
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.read() == data


def test_slixmpp_is_told_the_size_limit(stack, new_user, upload_server):
    ua = new_user("slixbig")

    async def scenario():
        a = Uploader("%s/slix" % ua.jid, ua.password, stack.cafile)
        a.connect(("127.0.0.1", stack.port), force_starttls=True, disable_starttls=False)
        try:
            await asyncio.wait_for(a.started, STEP)
            with pytest.raises(slixmpp.plugins.xep_0363.FileTooBig):
                await a["xep_0363"].upload_file(
                    "big.bin", size=UPLOAD_MAX_SIZE + 1,
                    input_file=io.BytesIO(b"\0" * (UPLOAD_MAX_SIZE + 1)), timeout=STEP)
            assert a["xep_0363"].max_file_size == UPLOAD_MAX_SIZE
        finally:
            a.disconnect(wait=2.0)
            await asyncio.wait_for(a.gone, 10)

    slix_helpers.run(scenario(), TIMEOUT)

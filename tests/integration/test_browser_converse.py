"""A real browser client: Converse.js (tests/browser, npm, pinned in package-lock.json) in
Debian's headless Chromium, driven by selenium, logs in as alice over WebSocket (RFC 7395)
and chats with bob, a raw TCP client: bob shows online in alice's roster, his message shows
in her chat window, and the answer she types there (Enter) reaches him.

The page (tests/browser/converse.html) is served from a loopback HTTP server started here
and loads Converse from the local copy only (tools/browser-deps.sh runs `npm ci` once);
Chromium resolves no host name but localhost, and the test checks that every resource the
page loaded came from the loopback server.

Against the private stack the browser uses the frontend's ws_listen (ws://127.0.0.1:PORT),
then its wss_listen (wss://localhost:PORT); against a running stack (XMPP_HOST/XMPP_PORT,
deploy/compose-test) only wss, at XMPP_WSS_URL (HAProxy's wss port, e.g.
wss://localhost:5281/xmpp-websocket). For wss the server's certificate (the stack's, or
XMPP_CAFILE) is added to the NSS database of a private HOME, which Chromium trusts for TLS:
no --ignore-certificate-errors.

A screenshot of the chat and the browser's console log are left in
$XMPP_BUILD/screenshots/ (converse-ws.png, converse-ws-console.log, the same for wss).
Run alone:
    XMPP_BUILD=build /usr/bin/python3 -m pytest -q tests/integration/test_browser_converse.py
Skipped when chromium, chromium-driver or python3-selenium is not installed, and against a
running stack the ws case (it serves wss only) and, without XMPP_WSS_URL, the wss case.
"""

import functools
import json
import os
import shutil
import subprocess
import threading
import urllib.parse
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT, VALGRIND_SCALE, build_dir
from test_im_helpers import befriend, drop_pending, online

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_DIR = ROOT / "tests" / "browser"
WS_PATH = "/xmpp-websocket"
# Every wait is a wait for something a user would see; these bound them only (start-up of
# Chromium and Converse on a loaded machine, the servers under valgrind).
WAIT = 60.0 * VALGRIND_SCALE

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the test is skipped below
    webdriver = None


def require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if webdriver is None:
        missing.append("python3-selenium")
    if missing:
        pytest.skip("the browser test needs chromium, chromium-driver and python3-selenium "
                    "(tools/install-deps.sh); missing: %s" % ", ".join(missing))


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_url():
    """Base URL of tests/browser served on a free loopback port, Converse installed."""
    require_browser()
    r = subprocess.run([str(ROOT / "tools" / "browser-deps.sh")], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, "tools/browser-deps.sh failed (%d):\n%s%s" % (
        r.returncode, r.stdout, r.stderr)
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(QuietHandler, directory=str(PAGE_DIR)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def websocket_url(stack, scheme):
    """(URL, certificate to trust or None) of the WebSocket the browser uses."""
    if getattr(stack, "remote", False):
        url = os.environ.get("XMPP_WSS_URL")
        if scheme == "ws":
            pytest.skip("plain ws: the running stack offers WebSocket over TLS only")
        if not url:
            pytest.skip("the running stack's WebSocket URL is not given (XMPP_WSS_URL, e.g. "
                        "wss://localhost:5281%s)" % WS_PATH)
        return url, os.environ.get("XMPP_CAFILE") or stack.cafile
    if scheme == "ws":
        return "ws://127.0.0.1:%d%s" % (stack.frontend.ws_port, WS_PATH), None
    # The test certificate names localhost.
    return "wss://localhost:%d%s" % (stack.frontend.wss_port, WS_PATH), stack.cafile


def trust_in_nss(home, cafile):
    """A private NSS database in HOME (~/.pki/nssdb, where Chromium on Linux looks) that
    trusts `cafile` to identify servers."""
    db = "sql:%s" % (home / ".pki" / "nssdb")
    (home / ".pki" / "nssdb").mkdir(parents=True)
    for args in (["-N", "--empty-password"],
                 ["-A", "-n", "xmpp-test-ca", "-t", "C,,", "-i", str(cafile)]):
        r = subprocess.run(["certutil", "-d", db] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "certutil %s: %s%s" % (args, r.stdout, r.stderr)


def start_chromium(home, cafile=None):
    """Headless Chromium with its own HOME (profile, NSS database); it resolves no name but
    localhost, so nothing outside this machine can be fetched."""
    home.mkdir(parents=True, exist_ok=True)
    if cafile:
        if not shutil.which("certutil"):
            pytest.fail("certutil (libnss3-tools) is needed to trust %s" % cafile)
        trust_in_nss(home, cafile)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--user-data-dir=%s" % (home / "profile"),
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , "
                "EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = dict(os.environ, HOME=str(home))
    service = Service(CHROMEDRIVER, log_path=str(home / "chromedriver.log"), env=env)
    return webdriver.Chrome(service=service, options=opts)


def wait_until(driver, what, condition):
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(condition)
    except TimeoutException:
        raise AssertionError("after %.0fs in the browser: %s" % (WAIT, what)) from None


def visible(driver, css):
    """The first displayed element matching css, else False."""
    for el in driver.find_elements(By.CSS_SELECTOR, css):
        if el.is_displayed():
            return el
    return False


def save_evidence(driver, name, console):
    """Screenshot and console log under the build folder; returns the screenshot path."""
    out = build_dir() / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    shot = out / ("%s.png" % name)
    driver.save_screenshot(str(shot))
    (out / ("%s-console.log" % name)).write_text(
        "".join("%s %s\n" % (e.get("level"), e.get("message")) for e in console))
    return shot


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_converse_chats_over_websocket(stack, new_user, login, page_url, tmp_path, scheme):
    ws_url, cafile = websocket_url(stack, scheme)
    alice, bob = new_user("alice"), new_user("bob")
    a = online(login, alice)
    b = online(login, bob, resource="tcp")
    befriend(a, b)
    a.close()
    drop_pending(b)

    driver = start_chromium(tmp_path / "home", cafile)
    console = []
    try:
        given = {"websocket_url": ws_url, "jid": alice.jid, "password": alice.password}
        driver.get(page_url + "converse.html#" + urllib.parse.quote(json.dumps(given)))

        # bob, available on TCP, is online in alice's roster.
        contact = 'a.open-chat[data-jid="%s"]' % bob.jid
        wait_until(driver, "%s online in alice's roster" % bob.jid,
                   lambda d: visible(d, contact + " .contact-name--online"))
        visible(driver, contact).click()
        chat = 'converse-chat[jid="%s"]' % bob.jid
        textarea = wait_until(driver, "the chat with %s open" % bob.jid,
                              lambda d: visible(d, chat + " textarea.chat-textarea"))

        # bob's message shows in the chat window.
        hello = "hello alice, this is bob " + uuid.uuid4().hex[:8]
        b.message(alice.jid, hello)
        wait_until(driver, "bob's message %r in the chat window" % hello,
                   lambda d: any(hello in el.text for el in
                                 d.find_elements(By.CSS_SELECTOR, chat + " .chat-msg__text")))

        # alice answers in the textarea, Enter sends; bob gets it from her.
        answer = "hi bob, alice here " + uuid.uuid4().hex[:8]
        textarea.send_keys(answer)
        textarea.send_keys(Keys.ENTER)
        got = b.im_wait_message(body=answer, timeout=WAIT)
        assert got.get("from", "").split("/")[0] == alice.jid, got.get("from")
        wait_until(driver, "alice's answer shown as sent in the chat window",
                   lambda d: any(answer in el.text for el in
                                 d.find_elements(By.CSS_SELECTOR, chat + " .chat-msg__text")))

        # Nothing came from outside this machine: every resource from the page's server.
        loaded = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        foreign = [u for u in loaded if not u.startswith(page_url)]
        assert not foreign, "the page loaded resources from elsewhere: %s" % foreign
    except BaseException:
        console = driver.get_log("browser")
        shot = save_evidence(driver, "converse-%s-failure" % scheme, console)
        print("browser screenshot: %s\n---- browser console (last 150 entries) ----\n%s"
              % (shot, "\n".join("%s %s" % (e.get("level"), e.get("message"))
                                 for e in console[-150:])))
        raise
    else:
        console = driver.get_log("browser")
        save_evidence(driver, "converse-%s" % scheme, console)
    finally:
        driver.quit()

"""XEP-0363 HTTP File Upload: slots from the router on upload.localhost, the upload-server
process storing and serving the files. Slot requests in raw XML; PUT and GET with
http.client against the upload process on loopback (upload_server fixture)."""

import hashlib
import hmac
import http.client as httpc
import os
import socket
import ssl
import time
import urllib.parse
import uuid
from xml.sax.saxutils import quoteattr

import pytest

from conftest import UPLOAD_MAX_SIZE, UPLOAD_QUOTA, UploadServer, free_port
from xmpp_client import NS_DISCO_INFO, NS_STANZAS, dump, q

NS_UP = "urn:xmpp:http:upload:0"
NS_DATA = "jabber:x:data"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
SERVICE = "upload.localhost"


def request_slot(c, filename, size, ctype=None):
    """The iq answer (result or error) to a slot request."""
    ct = "" if ctype is None else " content-type=%s" % quoteattr(ctype)
    return c.iq("get", "<request xmlns='%s' filename=%s size='%d'%s/>"
                % (NS_UP, quoteattr(filename), size, ct), to=SERVICE)


def slot_of(r):
    """(put url, {header: value}, get url) of a slot result."""
    assert r.get("type") == "result", dump(r)
    slot = r.find(q(NS_UP, "slot"))
    assert slot is not None, dump(r)
    put = slot.find(q(NS_UP, "put"))
    headers = {h.get("name"): h.text for h in put.findall(q(NS_UP, "header"))}
    return put.get("url"), headers, slot.find(q(NS_UP, "get")).get("url")


def http(method, url, body=None, headers=None, raw_path=None, cafile=None):
    """(status, headers dict (lower-case names), body) of one request (https: trusting
    cafile, the name checked is localhost)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False  # 127.0.0.1 against a certificate for localhost
        conn = httpc.HTTPSConnection(u.hostname, u.port, timeout=10, context=ctx)
    else:
        conn = httpc.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest(method, raw_path or u.path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None and not any(k.lower() == "content-length" for k in (headers or {})):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            try:
                conn.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the body: the answer is still there to read
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def put(url, headers, body, ctype=None, extra=None):
    h = dict(headers)
    if ctype:
        h["Content-Type"] = ctype
    h.update(extra or {})
    return http("PUT", url, body, h)[0]


def slot_id(url):
    return urllib.parse.urlsplit(url).path.split("/")[2]


def stored_path(upload_server, url):
    i = slot_id(url)
    return upload_server.dir / i[:2] / i


def nothing_stored(upload_server, url):
    return not stored_path(upload_server, url).exists()


def upload(c, upload_server, data, name="photo.jpg", ctype="image/jpeg"):
    put_url, headers, get_url = slot_of(request_slot(c, name, len(data), ctype))
    assert put(put_url, headers, data, ctype) == 201
    return get_url


def error_of(r):
    assert r.get("type") == "error", dump(r)
    return r.find("{jabber:client}error")


@pytest.fixture
def uploader(login, new_user, upload_server):
    user = new_user("up")
    return user, login(user)


def test_service_is_listed_and_says_its_limit(uploader):
    _, c = uploader
    items = c.iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to="localhost")
    assert SERVICE in [i.get("jid") for i in items.iter(q(NS_DISCO_ITEMS, "item"))], dump(items)
    info = c.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=SERVICE)
    assert info.get("type") == "result", dump(info)
    ids = [(i.get("category"), i.get("type")) for i in info.iter(q(NS_DISCO_INFO, "identity"))]
    assert ("store", "file") in ids
    assert NS_UP in [f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))]
    fields = {f.get("var"): f.findtext(q(NS_DATA, "value")) for f in info.iter(q(NS_DATA, "field"))}
    assert fields.get("FORM_TYPE") == NS_UP and fields.get("max-file-size") == str(UPLOAD_MAX_SIZE)


def test_put_then_get_gives_the_same_bytes_type_ranges_and_head(uploader, upload_server):
    _, c = uploader
    data = os.urandom(100000)
    put_url, headers, get_url = slot_of(request_slot(c, "holiday photo é.jpg", len(data), "image/jpeg"))
    assert put_url.startswith(upload_server.url + "/") and "Authorization" in headers
    assert put(put_url, headers, data, "image/jpeg") == 201
    status, h, body = http("GET", get_url)
    assert status == 200 and body == data
    assert h["content-type"] == "image/jpeg" and h["content-length"] == str(len(data))
    status, h, body = http("HEAD", get_url)
    assert status == 200 and body == b"" and h["content-length"] == str(len(data))
    status, h, body = http("GET", get_url, headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == data[1000:2000]
    assert h["content-range"] == "bytes 1000-1999/%d" % len(data)
    status, h, body = http("GET", get_url, headers={"Range": "bytes=-10"})
    assert status == 206 and body == data[-10:]
    status, h, _ = http("GET", get_url, headers={"Range": "bytes=%d-" % len(data)})
    assert status == 416 and h["content-range"] == "bytes */%d" % len(data)


def test_the_type_sent_when_the_request_named_none_is_kept(uploader, upload_server):
    _, c = uploader
    data = b"%PDF-1.4 not really\n"
    put_url, headers, get_url = slot_of(request_slot(c, "doc.pdf", len(data)))
    assert put(put_url, headers, data, "application/pdf") == 201
    status, h, body = http("GET", get_url)
    assert status == 200 and body == data and h["content-type"] == "application/pdf"


def test_too_large_is_refused_with_the_limit(uploader):
    _, c = uploader
    err = error_of(request_slot(c, "big.iso", UPLOAD_MAX_SIZE + 1, "application/octet-stream"))
    assert err.get("type") == "modify" and err.find(q(NS_STANZAS, "not-acceptable")) is not None
    assert err.findtext("%s/%s" % (q(NS_UP, "file-too-large"), q(NS_UP, "max-file-size"))) == \
        str(UPLOAD_MAX_SIZE), dump(err)


def test_quota_is_per_user_and_says_when_to_retry(uploader, login, new_user):
    _, c = uploader
    n = UPLOAD_QUOTA // UPLOAD_MAX_SIZE
    for i in range(n):
        slot_of(request_slot(c, "part%d.bin" % i, UPLOAD_MAX_SIZE))
    err = error_of(request_slot(c, "one-more.bin", 1))
    assert err.get("type") == "wait" and err.find(q(NS_STANZAS, "resource-constraint")) is not None
    retry = err.find(q(NS_UP, "retry"))
    assert retry is not None and retry.get("stamp", "").endswith("Z"), dump(err)
    other = login(new_user("up2"))
    slot_of(request_slot(other, "mine.bin", UPLOAD_MAX_SIZE))


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", "x\\y", "a" * 256])
def test_bad_file_names_are_not_acceptable(uploader, name):
    _, c = uploader
    err = error_of(request_slot(c, name, 10))
    assert err.find(q(NS_STANZAS, "not-acceptable")) is not None or \
        err.find(q(NS_STANZAS, "bad-request")) is not None, dump(err)
    if name:
        assert err.find(q(NS_STANZAS, "not-acceptable")) is not None, dump(err)


def test_bad_requests_are_bad_request(uploader):
    _, c = uploader
    for payload in ["<request xmlns='%s' filename='a.txt'/>" % NS_UP,
                    "<request xmlns='%s' filename='a.txt' size='-1'/>" % NS_UP,
                    "<request xmlns='%s' filename='a.txt' size='0'/>" % NS_UP,
                    "<request xmlns='%s' filename='a.txt' size='9' content-type='no type'/>" % NS_UP]:
        err = error_of(c.iq("get", payload, to=SERVICE))
        assert err.find(q(NS_STANZAS, "bad-request")) is not None, dump(err)


def test_wrong_signature_is_403_and_nothing_is_stored(uploader, upload_server):
    _, c = uploader
    data = b"x" * 100
    put_url, headers, get_url = slot_of(request_slot(c, "a.txt", len(data), "text/plain"))
    auth = headers["Authorization"]
    bad = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    assert put(put_url, {"Authorization": bad}, data, "text/plain") == 403
    assert put(put_url, {}, data, "text/plain") == 403
    # A token of another slot does not open this one.
    other_url, other_headers, _ = slot_of(request_slot(c, "a.txt", len(data), "text/plain"))
    assert put(put_url, other_headers, data, "text/plain") == 403
    assert nothing_stored(upload_server, put_url)
    assert http("GET", get_url)[0] == 404


def sign(stack, sid, name, size, ctype, expiry, bare):
    secret = [l for l in stack.upload_secret_file.read_text().splitlines()
              if l and not l.startswith("#")][0]
    msg = "PUT\n%s/%s\n%d\n%s\n%d\n%s" % (sid, name, size, ctype, expiry, bare)
    sig = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
    return "Bearer %d.%d.%s.%s.%s" % (expiry, size, ctype.encode().hex(), bare.encode().hex(), sig)


def test_expired_slot_is_403_and_nothing_is_stored(stack, uploader, upload_server):
    user, c = uploader
    data = b"y" * 50
    put_url, headers, get_url = slot_of(request_slot(c, "b.txt", len(data), "text/plain"))
    # The same slot, honestly signed, but expired a minute ago.
    token = sign(stack, slot_id(put_url), "b.txt", len(data), "text/plain",
                 int(time.time()) - 60, user.jid)
    assert put(put_url, {"Authorization": token}, data, "text/plain") == 403
    assert nothing_stored(upload_server, put_url)
    assert put(put_url, headers, data, "text/plain") == 201  # the real token still works


def test_body_larger_or_smaller_than_the_slot_is_refused(uploader, upload_server):
    _, c = uploader
    put_url, headers, get_url = slot_of(request_slot(c, "c.bin", 1000, "application/octet-stream"))
    h = dict(headers, **{"Content-Type": "application/octet-stream"})
    assert http("PUT", put_url, b"z" * 1001, h)[0] == 413
    assert http("PUT", put_url, b"z" * 999, h)[0] == 400
    # The type the slot was asked for is the one to send.
    assert http("PUT", put_url, b"z" * 1000, dict(headers, **{"Content-Type": "text/html"}))[0] == 400
    assert nothing_stored(upload_server, put_url)
    assert http("GET", get_url)[0] == 404


def test_paths_outside_the_store_are_refused(uploader, upload_server):
    _, c = uploader
    data = b"evil"
    put_url, headers, get_url = slot_of(request_slot(c, "d.txt", len(data), "text/plain"))
    sid = slot_id(put_url)
    before = sorted(p for p in upload_server.dir.rglob("*"))
    h = dict(headers, **{"Content-Type": "text/plain"})
    for path, want in [("/upload/%s/../../../etc/passwd" % sid, (400,)),
                       ("/upload/%s/%%2e%%2e" % sid, (400,)),
                       ("/upload/%s/..%%2f..%%2fx" % sid, (400,)),
                       ("/upload/../%s/d.txt" % sid, (400, 404)),
                       ("/etc/passwd", (404,)),
                       ("/upload/%s/%%00d.txt" % sid, (400, 403)),
                       ("/upload/%s/" % sid, (400,))]:
        status = http("PUT", upload_server.url, data, h, raw_path=path)[0]
        assert status in want, (path, status)
        status = http("GET", upload_server.url, raw_path=path)[0]
        assert status in want + (404,), (path, status)
    assert sorted(p for p in upload_server.dir.rglob("*")) == before
    assert nothing_stored(upload_server, put_url)


def test_second_put_to_a_slot_is_409(uploader, upload_server):
    _, c = uploader
    put_url, headers, get_url = slot_of(request_slot(c, "e.txt", 5, "text/plain"))
    assert put(put_url, headers, b"first", "text/plain") == 201
    assert put(put_url, headers, b"other", "text/plain") == 409
    assert http("GET", get_url)[2] == b"first"


def test_concurrent_puts_of_one_slot_write_one_file(uploader, upload_server):
    """While one PUT writes a slot, another PUT of the same slot is refused at once (409)
    instead of writing a second copy that only fails at the end: a slot cannot be used to
    fill the disk past its size."""
    _, c = uploader
    size = 256 * 1024
    put_url, headers, get_url = slot_of(request_slot(c, "dup.bin", size,
                                                     "application/octet-stream"))
    u = urllib.parse.urlsplit(put_url)
    head = ("PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: "
            "application/octet-stream\r\nContent-Length: %d\r\n\r\n"
            % (u.path, headers["Authorization"], size)).encode()
    first = socket.create_connection((u.hostname, u.port))
    try:
        first.sendall(head + b"a" * (size // 2))        # the first PUT is writing
        deadline = time.monotonic() + 10
        tmp = upload_server.dir / "tmp"
        while not any(slot_id(put_url) in p.name for p in tmp.iterdir()):
            assert time.monotonic() < deadline, "the first PUT never started its file"
            time.sleep(0.05)
        assert put(put_url, headers, b"b" * size, "application/octet-stream") == 409
        assert [p for p in tmp.iterdir() if slot_id(put_url) in p.name][0].stat().st_size \
            < size, "the second PUT wrote into the first one's file"
        first.sendall(b"a" * (size - size // 2))
        first.settimeout(10)
        assert first.recv(64).startswith(b"HTTP/1.1 201")
    finally:
        first.close()
    assert http("GET", get_url)[2] == b"a" * size


def test_one_address_cannot_hold_every_connection(stack):
    """upload_max_connections_per_ip: half-sent requests from one address take at most
    that many connections; another client is still served."""
    port = free_port()
    up = UploadServer(stack, "perip", {"upload_listen": "127.0.0.1:%d" % port,
                                       "upload_max_connections": "8",
                                       "upload_max_connections_per_ip": "4",
                                       "upload_threads": "1"})
    socks = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /upload/")
            socks.append(s)
        time.sleep(0.5)
        other = socket.socket()
        other.settimeout(10)
        other.bind(("127.0.0.2", 0))                 # another client address
        other.connect(("127.0.0.1", port))
        other.sendall(b"GET /upload/%s/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                      % (b"0" * 32))
        socks.append(other)
        assert other.recv(64).startswith(b"HTTP/1.1 404")
    finally:
        for s in socks:
            s.close()
        problems = up.stop()
    assert not problems, "\n".join(problems)


def test_a_malformed_record_is_dropped_not_fatal(stack, uploader):
    """An entry of the user's upload hash in no known form is dropped by the next slot
    request rather than failing every later one."""
    user, c = uploader
    stack.redis.command("HSET", "itest:upload:{%s}" % user.jid, "junk", "garbage")
    r = request_slot(c, "after.txt", 10, "text/plain")
    assert r.get("type") == "result", dump(r)
    assert stack.redis.command("HEXISTS", "itest:upload:{%s}" % user.jid, "junk") == 0


def test_get_of_an_unknown_file_is_404(uploader, upload_server):
    _, c = uploader
    get_url = upload(c, upload_server, b"hello", "f.txt", "text/plain")
    assert http("GET", get_url[:-len("f.txt")] + "g.txt")[0] == 404
    assert http("GET", upload_server.url + "/" + "0" * 32 + "/f.txt")[0] == 404
    assert http("DELETE", get_url)[0] == 405


def test_account_deletion_makes_the_files_404_and_removes_them(stack, uploader, upload_server):
    user, c = uploader
    get_url = upload(c, upload_server, b"private bytes", "g.txt", "text/plain")
    path = stored_path(upload_server, get_url)
    assert http("GET", get_url)[2] == b"private bytes" and path.exists()
    r = stack.ctl("deluser", user.jid)
    assert r.returncode == 0, r.stderr
    assert http("GET", get_url)[0] == 404
    assert not path.exists()


def test_https_straight_from_the_upload_process(stack, uploader, upload_server):
    """With upload_tls_cert the upload process speaks TLS itself (make run's certificate
    would do); the slot's path and token are the same whatever the scheme and port."""
    _, c = uploader
    tls = UploadServer(stack, "tls", {"upload_listen": "127.0.0.1:%d" % free_port(),
                                      "upload_tls_cert": stack.cafile,
                                      "upload_tls_key": stack.keyfile})
    try:
        data = os.urandom(5000)
        put_url, headers, get_url = slot_of(request_slot(c, "tls.bin", len(data), "application/octet-stream"))
        path = urllib.parse.urlsplit(put_url).path
        url = tls.url[:-len("/upload")] + path
        h = dict(headers, **{"Content-Type": "application/octet-stream"})
        assert http("PUT", url, data, h, cafile=stack.cafile)[0] == 201
        status, hd, body = http("GET", url, cafile=stack.cafile)
        assert status == 200 and body == data
        assert http("GET", get_url)[2] == data  # the same store behind both
        with pytest.raises(ssl.SSLError):
            http("GET", url, cafile=None)  # the test certificate is not in the system's store
    finally:
        problems = tls.stop()
    assert not problems, "\n".join(problems)


def put_chunked(url, headers, chunks):
    """A PUT with Transfer-Encoding: chunked (no Content-Length); the status."""
    u = urllib.parse.urlsplit(url)
    conn = httpc.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        try:
            conn.request("PUT", u.path, body=iter(chunks), headers=headers, encode_chunked=True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return conn.getresponse().status
    finally:
        conn.close()


def test_chunked_body_is_counted_against_the_slot(uploader, upload_server):
    _, c = uploader
    put_url, headers, get_url = slot_of(request_slot(c, "h.bin", 3000, "application/octet-stream"))
    h = dict(headers, **{"Content-Type": "application/octet-stream"})
    assert put_chunked(put_url, h, [b"a" * 1000] * 4) == 413
    assert put_chunked(put_url, h, [b"a" * 1000] * 2) == 400
    assert nothing_stored(upload_server, put_url)
    assert put_chunked(put_url, h, [b"a" * 1000, b"b" * 1000, b"c" * 1000]) == 201
    assert http("GET", get_url)[2] == b"a" * 1000 + b"b" * 1000 + b"c" * 1000


def test_sweep_deletes_files_past_their_time(stack, uploader, upload_server):
    """An upload process keeping files one second (its own store, so the shared one is not
    swept) deletes a stored file on its next sweep and forgets its record."""
    user, c = uploader
    store = stack.tmp / ("uploads-sweep-%s" % uuid.uuid4().hex[:8])
    up = UploadServer(stack, "sweep", {"upload_listen": "127.0.0.1:%d" % free_port(),
                                       "upload_dir": str(store), "upload_expire_after": "1",
                                       "upload_sweep_interval": "1"})
    try:
        data = b"short-lived"
        put_url, headers, _ = slot_of(request_slot(c, "s.txt", len(data), "text/plain"))
        path = urllib.parse.urlsplit(put_url).path
        url = up.url[:-len("/upload")] + path
        assert put(url, headers, data, "text/plain") == 201
        sid = slot_id(put_url)
        stored = store / sid[:2] / sid
        deadline = time.monotonic() + 30
        while stored.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stored.exists(), "the sweep left an expired file"
        assert http("GET", url)[0] == 404
        key = "itest:upload:{%s}" % user.jid
        assert stack.redis.command("HEXISTS", key, sid) == 0
    finally:
        problems = up.stop()
    assert not problems, "\n".join(problems)

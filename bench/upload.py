#!/usr/bin/env python3
"""The upload case of make bench (bench/run.sh): one account asks the router for XEP-0363
slots and moves a file of --mb MB (random bytes) through the upload process on loopback:
PUT then GET, --runs times, each timed from the request's first byte to the response's last;
the bytes read back are compared. Prints one RESULT line with the median MB/s of each
direction and the upload process's CPU ms per MB moved (user+sys from /proc over the runs).
Uses the integration tests' raw client (tests/integration/xmpp_client.py)."""

import argparse
import http.client
import os
import statistics
import sys
import time
import urllib.parse
from xml.sax.saxutils import quoteattr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from xmpp_client import XMPPClient, q  # noqa: E402

XMPPClient._trace = lambda self, direction, data: None  # no per-stanza trace on stdout

NS_UP = "urn:xmpp:http:upload:0"


def cpu_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def request(method, url, body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    try:
        t0 = time.monotonic()
        conn.request(method, u.path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.monotonic() - t0
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--user", default="lg0")
    ap.add_argument("--password", required=True)
    ap.add_argument("--upload-pid", type=int, required=True)
    ap.add_argument("--mb", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--label", default="ours")
    a = ap.parse_args()
    c = XMPPClient(a.port, domain=a.domain, cafile=a.cafile, timeout=30)
    c.login(a.user, a.password)
    data = os.urandom(a.mb * 1000 * 1000)
    put_rates, get_rates = [], []
    cpu0 = cpu_ms(a.upload_pid)
    for i in range(a.runs):
        r = c.iq("get", "<request xmlns='%s' filename=%s size='%d' content-type='application/octet-stream'/>"
                 % (NS_UP, quoteattr("bench%d.bin" % i), len(data)), to="upload." + a.domain)
        slot = r.find(q(NS_UP, "slot"))
        if slot is None:
            print("upload: no slot: %s" % r.get("type"), file=sys.stderr)
            return 1
        put = slot.find(q(NS_UP, "put"))
        headers = {h.get("name"): h.text for h in put.findall(q(NS_UP, "header"))}
        headers["Content-Type"] = "application/octet-stream"
        status, _, dt = request("PUT", put.get("url"), data, headers)
        if status != 201:
            print("upload: PUT answered %d" % status, file=sys.stderr)
            return 1
        put_rates.append(a.mb / dt)
        status, body, dt = request("GET", slot.find(q(NS_UP, "get")).get("url"))
        if status != 200 or body != data:
            print("upload: GET answered %d with %d bytes" % (status, len(body)), file=sys.stderr)
            return 1
        get_rates.append(a.mb / dt)
    cpu = cpu_ms(a.upload_pid) - cpu0
    c.close()
    print("    PUT MB/s: %s" % " ".join("%.0f" % r for r in put_rates))
    print("    GET MB/s: %s" % " ".join("%.0f" % r for r in get_rates))
    print("RESULT server=%s mb=%d runs=%d put_mb_per_s=%.1f get_mb_per_s=%.1f cpu_ms_per_mb=%.2f"
          % (a.label, a.mb, a.runs, statistics.median(put_rates), statistics.median(get_rates),
             cpu / (2 * a.mb * a.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

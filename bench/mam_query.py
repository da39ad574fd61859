#!/usr/bin/env python3
"""The mam-query case of make bench (bench/run.sh): fills one account's XEP-0313 archive
with N entries shaped as the router writes them (redis-cli --pipe: the main stream, the
per-conversation stream, the contact index), reads Redis memory before and after (bytes per
archived entry), then logs in as that account and times queries for the last 50 messages:
of the whole archive (RSM <before/>), and of one conversation (a 'with' filter). Prints one
RESULT line. Uses the integration tests' raw client (tests/integration/xmpp_client.py)."""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from xmpp_client import IQ_TAG, MESSAGE_TAG, XMPPClient  # noqa: E402

XMPPClient._trace = lambda self, direction, data: None  # no per-stanza trace on stdout

NS_MAM = "urn:xmpp:mam:2"


def resp(*args):
    out = ["*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append("$%d\r\n" % len(b))
        out.append(a)
        out.append("\r\n")
    return "".join(out)


def redis(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), "--raw"] + list(args),
                          capture_output=True, text=True, check=True).stdout.strip()


def used_memory(port):
    for line in redis(port, "INFO", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO memory")


def fill(a):
    """N entries in a's archive, alternating between two contacts, 1 ms apart, ending now."""
    owner = "%s@%s" % (a.user, a.domain)
    peers = ["%s@%s" % (p, a.domain) for p in a.peers.split(",")]
    now = int(time.time() * 1000)
    base = now - a.fill
    lines = []
    for i in range(a.fill):
        peer = peers[i % len(peers)]
        eid = "%d-0" % (base + i)
        out = i % 3 != 0
        frm, to = ("%s/phone" % owner, peer) if out else ("%s/laptop" % peer, owner)
        xml = ("<message from='%s' to='%s' type='chat' id='bench-%d'><body>archived message "
               "number %d, about as long as a short chat line</body><origin-id "
               "xmlns='urn:xmpp:sid:0' id='bench-%d'/><stanza-id xmlns='urn:xmpp:sid:0' "
               "by='%s' id='%s'/></message>" % (frm, to, i, i, i, owner, eid))
        withj = to if out else frm
        lines.append(resp("XADD", "%smam:{%s}" % (a.prefix, owner), eid, "with", withj,
                          "dir", "out" if out else "in", "xml", xml))
        lines.append(resp("XADD", "%smamwith:{%s}:%s" % (a.prefix, owner, peer), eid,
                          "with", withj))
        lines.append(resp("ZADD", "%smamidx:{%s}" % (a.prefix, owner), str(base + i), peer))
    subprocess.run(["redis-cli", "-p", str(a.redis_port), "--pipe"], input="".join(lines),
                   text=True, check=True, capture_output=True)


def timed_query(c, inner, want):
    qid = "q%d" % time.monotonic_ns()
    t0 = time.perf_counter()
    c.send("<iq type='set' id='%s'><query xmlns='%s' queryid='%s'>%s</query></iq>"
           % (qid, NS_MAM, qid, inner))
    got = 0
    while True:
        el = c.recv()
        if el.tag == MESSAGE_TAG:
            got += 1
        elif el.tag == IQ_TAG and el.get("id") == qid:
            break
    ms = (time.perf_counter() - t0) * 1000
    if el.get("type") != "result" or got != want:
        raise RuntimeError("query answered %s with %d results" % (el.get("type"), got))
    return ms


def eval_usec(port):
    """Redis's own time per query script (INFO commandstats, since the last RESETSTAT)."""
    for line in redis(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_eval:"):
            return float(line.split("usec_per_call=")[1].split(",")[0])
    return 0.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--prefix", default="bench:")
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--user", default="lg0")
    ap.add_argument("--peers", default="lg1,lg2")
    ap.add_argument("--password", required=True)
    ap.add_argument("--fill", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--label", default="ours")
    a = ap.parse_args()

    mem0 = used_memory(a.redis_port)
    t0 = time.monotonic()
    fill(a)
    fill_s = time.monotonic() - t0
    mem1 = used_memory(a.redis_port)
    owner = "%s@%s" % (a.user, a.domain)
    n = int(redis(a.redis_port, "XLEN", "%smam:{%s}" % (a.prefix, owner)))
    keys = ["%smam:{%s}" % (a.prefix, owner), "%smamidx:{%s}" % (a.prefix, owner)] + [
        "%smamwith:{%s}:%s@%s" % (a.prefix, owner, p, a.domain) for p in a.peers.split(",")]
    key_bytes = sum(int(redis(a.redis_port, "MEMORY", "USAGE", k, "SAMPLES", "0") or 0)
                    for k in keys)
    per_entry = key_bytes / max(n, 1)
    per_entry_info = (mem1 - mem0) / max(n, 1)

    c = XMPPClient(a.port, domain=a.domain, cafile=a.cafile, timeout=30)
    c.login(a.user, a.password, resource="bench")
    last_page = "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set>"
    with_form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>%s"
                 "</value></field><field var='with'><value>%s@%s</value></field></x>"
                 % (NS_MAM, a.peers.split(",")[0], a.domain))
    for _ in range(20):  # warm-up: scripts cached in Redis, connections settled
        timed_query(c, last_page, 50)
    redis(a.redis_port, "CONFIG", "RESETSTAT")
    whole = [timed_query(c, last_page, 50) for _ in range(a.queries)]
    eval_us_whole = eval_usec(a.redis_port)
    redis(a.redis_port, "CONFIG", "RESETSTAT")
    conv = [timed_query(c, with_form + last_page, 50) for _ in range(a.queries)]
    eval_us_conv = eval_usec(a.redis_port)
    c.close()
    print("RESULT scenario=mam-query server=%s entries=%d fill_s=%.1f queries=%d "
          "redis_bytes_per_entry=%.0f info_bytes_per_entry=%.0f last50_p50_ms=%.2f last50_p99_ms=%.2f "
          "last50_with_p50_ms=%.2f last50_with_p99_ms=%.2f mean_ms=%.2f redis_us_per_query=%.0f "
          "redis_us_per_with_query=%.0f"
          % (a.label, n, fill_s, a.queries, per_entry, per_entry_info, pct(whole, 0.5), pct(whole, 0.99),
             pct(conv, 0.5), pct(conv, 0.99), statistics.mean(whole), eval_us_whole,
             eval_us_conv))
    print("mam-query: %d archived entries (%.0f bytes of Redis memory each, with the "
          "conversation stream and index); last 50 of them: p50 %.2f ms, p99 %.2f ms; last 50 "
          "of one conversation: p50 %.2f ms, p99 %.2f ms (%d queries each)"
          % (n, per_entry, pct(whole, 0.5), pct(whole, 0.99), pct(conv, 0.5), pct(conv, 0.99),
             a.queries))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Splits a `perf record --call-graph dwarf` profile of server processes by cause.

usage: perf_causes.py [--top N] [--messages M] FILE.data [FILE.data ...]

Reads `perf script` of each file (taken with --call-graph dwarf, so that calls through the
shared libraries unwind) and puts every sample in one cause:
  - the leaf's library: OpenSSL (TLS), expat (XML parse), libzmq (ZeroMQ), libidn (JID
    preparation), hiredis (Redis client); in libc, malloc and free are allocation, and
    anything else (memcpy, strlen, ...) goes to the first caller outside libc;
  - our own code by source file (from `nm -l` of the binary): the serialiser in
    common/xml.c, the parser and tree in common/xml.c and common/stanza.c, common/jid.c, the
    link codec (common/ipc.c, common/zlink.c, the two link modules), c2s-frontend/tls.c;
    the rest is "our logic";
  - kernel time by the system call in the chain: client socket reads and writes, epoll,
    and, when libzmq (or its I/O thread) made the call, ZeroMQ TCP or ZeroMQ signalling
    (eventfd, poll, getpid, the I/O thread's epoll_wait); scheduling time inside a call
    (a sleeping epoll_wait, a preemption on the way out) stays with that call; page faults
    count as allocation.
With --messages M (the messages delivered while the profile ran) it also prints the CPU
microseconds per message of each cause (one sample = one period of cpu-clock).
"""
import bisect
import collections
import os
import re
import subprocess
import sys

LABELS = [
    ("sys_read", "syscalls: client socket reads (read/recv)"),
    ("sys_write", "syscalls: client socket writes (write/send; loopback delivery included)"),
    ("sys_epoll", "syscalls: epoll_wait/epoll_ctl of our loop (sleep and wake-up included)"),
    ("sys_redis", "syscalls: Redis connection"),
    ("sys_other", "syscalls: other"),
    ("tls", "TLS (OpenSSL, our tls.c)"),
    ("xml_parse", "XML parse (expat, our tree building)"),
    ("xml_ser", "XML serialise"),
    ("zmq_user", "ZeroMQ: library code (both threads)"),
    ("zmq_tcp", "ZeroMQ: link TCP send/recv (kernel)"),
    ("zmq_signal", "ZeroMQ: signalling (eventfd, poll, getpid, I/O thread wake-ups)"),
    ("link", "link codec (ours: ipc.c, zlink.c, link modules)"),
    ("jid", "JID preparation (libidn stringprep, jid.c)"),
    ("alloc", "allocation (malloc/free, page faults)"),
    ("our", "our logic (stream, routing, sessions)"),
    ("redis_client", "Redis client (hiredis)"),
    ("redis", "redis-server code"),
    ("kernel_other", "kernel: interrupts, preemption outside system calls"),
    ("other", "other (libc, clock, unknown)"),
]
LABEL = dict(LABELS)

ALLOC = re.compile(
    r"^(malloc|_int_malloc|free|_int_free|cfree|__libc_free|__libc_malloc|realloc|"
    r"_int_realloc|__libc_realloc|calloc|__libc_calloc|malloc_consolidate|unlink_chunk|"
    r"tcache_\w+|_int_free_\w+|sysmalloc|__default_morecore|sbrk|__brk|systrim|"
    r"alloc_perturb|__GI___libc_free|__GI___libc_malloc|__GI___libc_realloc|"
    r"malloc_printerr|__malloc_\w+|_mid_memalign|__posix_memalign|aligned_alloc|"
    r"CRYPTO_malloc|CRYPTO_free|CRYPTO_zalloc|CRYPTO_realloc)"
)
# libc's user-space half of a system call (the kernel half carries the same call).
SYSCALL_WRAPPER = re.compile(
    r"(read|write|__libc_read|__libc_write|__GI___libc_read|__GI___libc_write|__send|"
    r"__recv|__libc_send|__libc_recv|sendto|recvfrom|__poll|__GI___poll|poll|epoll_wait|"
    r"epoll_ctl|__getpid|getpid|__GI___pthread_enable_asynccancel|"
    r"__GI___pthread_disable_asynccancel|__pthread_enable_asynccancel|"
    r"__pthread_disable_asynccancel|__sendmsg|__recvmsg|writev|readv)$"
)
SERIALISE = {"escape_into", "xml_escape", "put_attr", "serialize_attrs", "serialize_node",
             "xml_serialize"}
LINK_FILES = ("common/ipc.c", "common/zlink.c", "c2s-frontend/router_link.c",
              "session-router/core/link.c")
# Helpers whose time belongs to whoever called them.
TRANSPARENT_FILES = ("common/buf.c", "common/util.c")


class OurBinary:
    """Function start addresses, names and source files of one of our binaries."""

    def __init__(self, path):
        self.starts, self.ends, self.names, self.files = [], [], [], []
        out = subprocess.run(["nm", "-S", "-l", "--defined-only", path], capture_output=True,
                             text=True).stdout
        rows = []
        for line in out.splitlines():
            head, _, loc = line.partition("\t")
            f = head.split()
            if len(f) != 4 or f[2] not in "tTwW":
                continue
            src = loc.rsplit(":", 1)[0]
            src = re.sub(r"^.*?/(common|c2s-frontend|session-router|bench)/", r"\1/", src)
            rows.append((int(f[0], 16), int(f[1], 16), f[3], src))
        rows.sort()
        for a, s, n, src in rows:
            self.starts.append(a)
            self.ends.append(a + s)
            self.names.append(n)
            self.files.append(src)

    def lookup(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.ends[i]:
            return self.names[i], self.files[i]
        return None, ""


BINARIES = {}


def our_binary(dso):
    if dso not in BINARIES:
        BINARIES[dso] = OurBinary(dso) if os.path.exists(dso) else None
    return BINARIES[dso]


def is_ours(dso):
    return os.path.basename(dso) in ("c2s-frontend", "session-router")


def owner(addr, sym, dso):
    """The cause a user-space frame stands for, or None to keep walking up."""
    b = os.path.basename(dso)
    if b.startswith(("libssl", "libcrypto")):
        return "tls"
    if b.startswith("libexpat"):
        return "xml_parse"
    if b.startswith("libzmq"):
        return "zmq_user"
    if b.startswith("libidn"):
        return "jid"
    if b.startswith("libhiredis"):
        return "redis_client"
    if b.startswith("redis-server"):
        return "redis"
    if is_ours(dso):
        ob = our_binary(dso)
        name, src = ob.lookup(addr) if ob else (None, "")
        name = name or sym
        if src.endswith(TRANSPARENT_FILES):
            return None
        if src.endswith("common/xml.c"):
            return "xml_ser" if name.split(".")[0] in SERIALISE else "xml_parse"
        if src.endswith("common/stanza.c"):
            return "xml_parse"
        if src.endswith("common/jid.c"):
            return "jid"
        if src.endswith(LINK_FILES):
            return "link"
        if src.endswith("c2s-frontend/tls.c"):
            return "tls"
        return "our"
    return None


def user_owner(frames):
    for addr, sym, dso in frames:
        if dso.startswith("[kernel"):
            continue
        o = owner(addr, sym, dso)
        if o:
            return o
    return None


def syscall_cause(call, frames, comm, kernel_syms):
    o = user_owner(frames)
    if comm.startswith("ZMQbg") or o in ("zmq_user", "link"):
        # libzmq moves data over TCP with send/recv; read and write are its eventfd
        # signalers (mailboxes between the application thread and the I/O thread).
        if call in ("poll", "ppoll", "getpid", "epoll_wait", "read", "write", "futex") or any(
                "eventfd" in s for s in kernel_syms):
            return "zmq_signal"
        return "zmq_tcp"
    if o == "redis_client":
        return "sys_redis"
    if o == "redis":
        return "redis"
    if call.startswith("epoll"):
        return "sys_epoll"
    if call in ("read", "recvfrom", "recvmsg", "readv", "recv"):
        return "sys_read"
    if call in ("write", "sendto", "sendmsg", "writev", "send"):
        return "sys_write"
    return "sys_other"


SYS_RE = re.compile(r"^__(?:x64|ia32)_sys_(\w+)|^__do_sys_(\w+)|^__se_sys_(\w+)")


KERNEL_CALL = [("ksys_write", "write"), ("vfs_write", "write"), ("ksys_read", "read"),
               ("vfs_read", "read"), ("__sys_sendto", "sendto"), ("__sys_recvfrom", "recvfrom"),
               ("do_epoll_wait", "epoll_wait"), ("do_epoll_ctl", "epoll_ctl"),
               ("do_sys_poll", "poll"), ("do_futex", "futex"), ("eventfd_write", "write"),
               ("eventfd_read", "read")]


def user_call(sym):
    """The system call a libc wrapper frame makes, or None."""
    s = re.sub(r"^(__GI___libc_|__libc_|__GI___|__GI_|___|__)", "", sym.split("@")[0])
    s = {"send": "sendto", "recv": "recvfrom", "lll_lock_wait_private": "futex",
         "lll_lock_wait": "futex", "futex_abstimed_wait_common": "futex"}.get(s, s)
    if s in ("write", "read", "sendto", "recvfrom", "sendmsg", "recvmsg", "writev", "readv",
             "poll", "epoll_wait", "epoll_ctl", "getpid", "futex", "openat", "close", "madvise",
             "clock_gettime"):
        return s
    return None


def syscall_name(frames, ksyms):
    """The system call a kernel sample belongs to (its entry may be inlined or already
    returned, as for scheduling on the way out), or None outside system calls."""
    for s in ksyms:
        m = SYS_RE.match(s)
        if m:
            return next(g for g in m.groups() if g)
    if not any(s in ("do_syscall_64", "entry_SYSCALL_64_after_hwframe") for s in ksyms):
        return None
    for a, s, d in frames:
        if not d.startswith("[kernel"):
            c = user_call(s)
            if c:
                return c
            break
    for k, call in KERNEL_CALL:
        if k in ksyms:
            return call
    return "unknown"


def classify(comm, frames):
    """frames: [(addr, sym, dso)], leaf first. Returns (cause, detail)."""
    if not frames:
        return "other", "?"
    addr, sym, dso = frames[0]
    if dso.startswith("[kernel"):
        ksyms = [s for a, s, d in frames if d.startswith("[kernel")]
        call = syscall_name(frames, ksyms)
        if call:
            return syscall_cause(call, frames, comm, ksyms), call
        if any(s == "asm_exc_page_fault" for s in ksyms):
            return "alloc", "page fault"
        if os.path.basename(dso).startswith("redis") or comm.startswith("redis"):
            return "redis", sym
        return "kernel_other", sym
    b = os.path.basename(dso)
    if b.startswith("libc"):
        base = sym.split("@")[0]
        if ALLOC.match(base):
            return "alloc", base
        if SYSCALL_WRAPPER.match(base):
            call = user_call(base) or "unknown"
            if "asynccancel" in base:
                call = next((c for c in (user_call(f[1]) for f in frames[1:3]) if c), "read")
            return syscall_cause(call, frames[1:], comm, []), call
    if ALLOC.match(sym):
        return "alloc", sym
    o = user_owner(frames)
    if o:
        return o, sym
    if comm.startswith("ZMQbg"):
        return "zmq_user", sym
    if comm.startswith("redis"):
        return "redis", sym
    return "other", sym


FRAME_RE = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def samples(path):
    """Yields (comm, period, frames) from perf script."""
    p = subprocess.Popen(["perf", "script", "-i", path, "-F", "comm,tid,period,ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         errors="replace")
    comm, period, frames = None, 0, []
    for line in p.stdout:
        if not line.strip():
            continue
        if not line[0].isspace():
            if comm is not None:
                yield comm, period, frames
            f = line.split()
            # comm may hold spaces: the last two fields are tid and period.
            comm, period, frames = " ".join(f[:-2]), int(f[-1]), []
            continue
        m = FRAME_RE.match(line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(2))
            frames.append((int(m.group(1), 16), sym, m.group(3)))
    if comm is not None:
        yield comm, period, frames
    p.wait()


def leaf_name(frames):
    addr, sym, dso = frames[0]
    b = os.path.basename(dso)
    if is_ours(dso):
        ob = our_binary(dso)
        n = ob.lookup(addr)[0] if ob else None
        sym = n or sym
    if sym == "[unknown]":
        sym = "?"
    return "%s %s" % (b.split(".so")[0] if not b.startswith("[") else "kernel", sym)


def report(path, top, messages):
    causes = collections.Counter()
    details = collections.defaultdict(collections.Counter)
    leaves = collections.Counter()
    threads = collections.Counter()
    alloc_by = collections.Counter()
    n = sched = wake = 0
    period_ns = 0
    for comm, period, frames in samples(path):
        n += 1
        period_ns += period
        cause, detail = classify(comm, frames)
        causes[cause] += 1
        details[cause][detail] += 1
        threads["ZeroMQ I/O thread" if comm.startswith("ZMQbg") else "main thread"
                if not comm.startswith(("redis", "bio", "jemalloc")) else comm] += 1
        if frames:
            leaves[leaf_name(frames)] += 1
        if frames and frames[0][2].startswith("[kernel"):
            ks = [f[1] for f in frames if f[2].startswith("[kernel")]
            if any(k in ("__schedule", "schedule", "finish_task_switch.isra.0") for k in ks):
                sched += 1
            elif any(k.startswith(("try_to_wake_up", "__wake_up")) for k in ks):
                wake += 1
        if cause == "alloc" and detail != "page fault":
            alloc_by[user_owner(frames[1:]) or "?"] += 1
    print("== %s: %d samples (%.2f s of CPU)" % (os.path.basename(path), n, period_ns / 1e9))
    if not n:
        return {}
    print("   threads: " + ", ".join("%s %.1f %%" % (t, 100.0 * c / n)
                                     for t, c in threads.most_common()))
    per = " %9s" % "us/msg" if messages else ""
    print("   %-74s %7s %7s%s" % ("cause", "share", "samples", per))
    for key, label in LABELS:
        c = causes.get(key, 0)
        if not c:
            continue
        extra = ""
        if messages:
            extra = " %9.2f" % (c / n * period_ns / 1e3 / messages)
        top_details = ", ".join("%s %d" % (d, k) for d, k in details[key].most_common(3))
        print("   %-74s %6.1f%% %7d%s   [%s]" % (label, 100.0 * c / n, c, extra, top_details))
    print("   across causes: switching tasks (schedule, finish_task_switch) %.1f %%, waking "
          "another task (try_to_wake_up) %.1f %%" % (100.0 * sched / n, 100.0 * wake / n))
    if alloc_by:
        a = sum(alloc_by.values())
        print("   allocation by caller: " + ", ".join(
            "%s %.0f %%" % (LABEL.get(k, k).split(" (")[0], 100.0 * v / a)
            for k, v in alloc_by.most_common(6)))
    print("   top functions (self):")
    for name, c in leaves.most_common(top):
        print("     %6.2f%%  %s" % (100.0 * c / n, name))
    return {"n": n, "period_ns": period_ns, "causes": causes, "leaves": leaves}


def main():
    args = sys.argv[1:]
    top, messages = 15, 0.0
    while args and args[0].startswith("--"):
        if args[0] == "--top":
            top = int(args[1])
        elif args[0] == "--messages":
            messages = float(args[1])
        else:
            sys.exit(__doc__)
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    total = {}
    for path in args:
        total[path] = report(path, top, messages)
        print()
    if len(args) > 1:
        ns = {p: r["period_ns"] for p, r in total.items() if r}
        s = sum(ns.values()) or 1
        print("== CPU split between the processes (sampled): " + ", ".join(
            "%s %.1f %%" % (os.path.basename(p).rsplit(".", 1)[0], 100.0 * v / s)
            for p, v in ns.items()))
        causes = collections.Counter()
        leaves = collections.Counter()
        for p, r in total.items():
            if not r:
                continue
            w = r["period_ns"] / r["n"]
            for k, v in r["causes"].items():
                causes[k] += v * w
            for k, v in r["leaves"].items():
                leaves[k] += v * w
        print("== all server processes by cause:")
        for key, label in LABELS:
            if causes.get(key):
                extra = " %9.2f us/msg" % (causes[key] / 1e3 / messages) if messages else ""
                print("   %-74s %6.1f%%%s" % (label, 100.0 * causes[key] / s, extra))
        print("== top functions over all server processes (self):")
        for name, c in leaves.most_common(top):
            print("     %6.2f%%  %s" % (100.0 * c / s, name))


if __name__ == "__main__":
    main()

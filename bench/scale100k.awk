# The report of bench/scale100k.sh. Input: the per-second samples (unix second, then the
# user+sys clock ticks of each server process: the frontends, the router, Redis), then the
# generators' outputs (PROGRESS lines by wall-clock second, HELD, RESULT). Figures from the
# script come in as variables (names, rss0/rss1 in KiB, c1/c2 ticks around the rest, ...).
# Prints the ramp by interval, memory per session, CPU at rest, and appends one RESULT line
# to the file `results`.
function kv(i, e) {
    delete v
    for (i = 2; i <= NF; i++) {
        e = index($i, "=")
        v[substr($i, 1, e - 1)] = substr($i, e + 1)
    }
}
# A generator's count (ok or gen_cpu_ms) at wall-clock second T: its last line up to T.
function at(arr, gg, T, k, x) {
    x = 0
    for (k = 1; k <= npl[gg]; k++) {
        if (pu[gg, k] > T) break
        x = arr[gg, k]
    }
    return x
}
function sessions(T, gg, s) {
    s = 0
    for (gg = 1; gg <= g; gg++) s += at(pok, gg, T)
    return s
}
function gencpu(T, gg, s) {
    s = 0
    for (gg = 1; gg <= g; gg++) s += at(pcpu, gg, T)
    return s
}
# CPU ms of server processes from..to between samples i and j.
function cpu(i, j, from, to, p, s) {
    s = 0
    for (p = from; p <= to; p++) s += (tk[j, p] - tk[i, p]) * 1000 / tck
    return s
}
function restpct(from, to, p, s) {
    s = 0
    for (p = from; p <= to; p++) s += (a2[p] - a1[p]) * 1000 / tck
    return s / (rest * 1000) * 100
}
BEGIN {
    np = split(names, nm, " ")
    split(rss0, r0, " ")
    split(rss1, r1, " ")
    split(c1, a1, " ")
    split(c2, a2, " ")
    g = 0
}
FILENAME ~ /samples$/ {
    ns++
    st[ns] = $1
    for (i = 2; i <= NF; i++) tk[ns, i - 1] = $i
    next
}
FNR == 1 { g++ }
/^PROGRESS / {
    kv()
    npl[g]++
    pu[g, npl[g]] = v["unix_s"]
    pok[g, npl[g]] = v["ok"]
    pcpu[g, npl[g]] = v["gen_cpu_ms"]
    next
}
/^HELD / {
    kv()
    held++
    if (start == "" || v["start_unix_ms"] + 0 < start) start = v["start_unix_ms"] + 0
    if (v["last_login_unix_ms"] + 0 > lastl) lastl = v["last_login_unix_ms"] + 0
    hok += v["ok"]
    hfail += v["fail"]
    if (v["login_p99_ms"] + 0 > p99) p99 = v["login_p99_ms"] + 0
    next
}
/^RESULT / {
    kv()
    nres++
    live += v["live"]
    lost += v["lost"]
    next
}
END {
    if (ns < 2) {
        print "scale100k: no samples"
        printf "RESULT case=scale100k server=%s status=failed reason=no-samples\n", label >> results
        exit
    }
    printf "\nramp (server CPU in %% of one core; 2 cores shared with the generators and other work)\n"
    printf "%6s %9s %9s %8s %8s %8s %8s %9s %8s\n", "t(s)", "sessions", "logins/s", "server%", \
        "fronts%", "router%", "redis%", "ms/login", "gens%"
    prev = 1
    for (i = 2; i <= ns; i++) {
        # A row at the first sample of each interval (a busy machine may skip a second).
        if (int((st[i] - st[1]) / interval) == int((st[prev] - st[1]) / interval) && i < ns) continue
        dt = st[i] - st[prev]
        if (dt <= 0) continue
        s1 = sessions(st[i])
        lg = s1 - sessions(st[prev])
        ms = cpu(prev, i, 1, np)
        printf "%6d %9d %9.0f %8.1f %8.1f %8.1f %8.1f %9.2f %8.1f\n", st[i] - st[1], s1, lg / dt, \
            ms / dt / 10, cpu(prev, i, 1, nfe) / dt / 10, cpu(prev, i, nfe + 1, nfe + 1) / dt / 10, \
            cpu(prev, i, np, np) / dt / 10, lg ? ms / lg : 0, (gencpu(st[i]) - gencpu(st[prev])) / dt / 10
        prev = i
    }
    # The whole ramp: from the sample before the generators started to the first one after
    # the last of them had all its sessions (so up to a second at rest is included).
    ramp_logins = sessions(st[ns]) - sessions(st[1])
    ramp_ms = cpu(1, ns, 1, np)
    ramp_secs = lastl > start ? (lastl - start) / 1000 : 0
    rate = ramp_secs > 0 ? hok / ramp_secs : 0
    per_login = ramp_logins ? ramp_ms / ramp_logins : 0
    printf "\nsessions: %d of %d logged in (failed %d), %d still live after the rest (lost %d)\n", \
        hok, target, hfail, live, lost
    printf "login rate: %.0f logins/s on average (%d logins in %.1f s, first start to last login; slowest login p99 of a generator %.0f ms)\n", \
        rate, hok, ramp_secs, p99
    # (Parentheses around every conditional argument: a bare ">" would redirect printf.)
    printf "server CPU during the ramp: %.3f ms per login (frontends %.3f, router %.3f, Redis %.3f), %.0f %% of one core on average\n", \
        per_login, (ramp_logins ? cpu(1, ns, 1, nfe) / ramp_logins : 0), \
        (ramp_logins ? cpu(1, ns, nfe + 1, nfe + 1) / ramp_logins : 0), \
        (ramp_logins ? cpu(1, ns, np, np) / ramp_logins : 0), \
        (st[ns] > st[1] ? ramp_ms / (st[ns] - st[1]) / 10 : 0)
    # Memory per session: the sessions that exist when the RSS is read.
    sess = hok - lost
    printf "\nmemory (VmRSS, KiB)%19s %10s %10s %12s\n", "before", "after", "delta", "KiB/session"
    fe0 = fe1 = 0
    for (p = 1; p <= np; p++) {
        printf "  %-34s %10d %10d %10d %12.2f\n", nm[p], r0[p], r1[p], r1[p] - r0[p], \
            sess ? (r1[p] - r0[p]) / sess : 0
        if (p <= nfe) {
            fe0 += r0[p]
            fe1 += r1[p]
        }
    }
    t0 = fe0 + r0[nfe + 1] + r0[np]
    t1 = fe1 + r1[nfe + 1] + r1[np]
    kfe = sess ? (fe1 - fe0) / sess : 0
    kro = sess ? (r1[nfe + 1] - r0[nfe + 1]) / sess : 0
    kre = sess ? (r1[np] - r0[np]) / sess : 0
    ktot = sess ? (t1 - t0) / sess : 0
    printf "  %-34s %10d %10d %10d %12.2f\n", "frontends (sum)", fe0, fe1, fe1 - fe0, kfe
    printf "  %-34s %10d %10d %10d %12.2f\n", "all server processes", t0, t1, t1 - t0, ktot
    redis_b = sess ? (redis1 - redis0) / sess : 0
    printf "  Redis used_memory: %d -> %d bytes, %.0f bytes per session\n", redis0, redis1, redis_b
    ktcp = sess ? (tcp1 - tcp0) * pagekib / sess : 0
    kslab = sess ? (slab1 - slab0) / sess : 0
    printf "  kernel, machine-wide (both ends of every loopback connection, other work included):\n"
    printf "    TCP socket memory %d -> %d pages, %.2f KiB per session; Slab %d -> %d KiB, %.2f KiB per session\n", \
        tcp0, tcp1, ktcp, slab0, slab1, kslab
    nf_ = split(fds, fd, " ")
    fmax = gmax = 0
    for (i = 1; i <= nf_; i++) {
        if (i <= nfe && fd[i] > fmax) fmax = fd[i]
        if (i > nfe && fd[i] > gmax) gmax = fd[i]
    }
    printf "  descriptors in use, largest: frontend %d, generator %d (limit %d each)\n", fmax, gmax, nofile
    # At rest.
    rpct = restpct(1, np)
    printf "\nserver CPU at rest, %d s, %d sessions idle: %.2f %% of one core", rest, sess, rpct
    printf " (frontends %.2f, router %.2f, Redis %.2f)\n", restpct(1, nfe), restpct(nfe + 1, nfe + 1), restpct(np, np)
    for (p = 1; p <= np; p++) printf "  %-10s %6.2f %%\n", nm[p], restpct(p, p)
    printf "  generators at rest (5 s): %.2f %% of one core\n", (g2 - g1) * 1000 / tck / 5000 * 100
    printf "  generators' RSS with the sessions: %d KiB, %.2f KiB per session\n", genrss, (sess ? genrss / sess : 0)
    printf "RESULT case=scale100k server=%s complete=%d target=%d reached=%d fail=%d lost=%d live=%d frontends=%d generators=%d nofile=%d ramp_secs=%.1f logins_per_s=%.0f cpu_ms_per_login=%.3f kib_per_session=%.2f kib_per_session_frontends=%.2f kib_per_session_router=%.2f kib_per_session_redis=%.2f redis_used_bytes_per_session=%.0f kernel_tcp_kib_per_session=%.2f rest_cpu_pct=%.2f rest_cpu_pct_frontends=%.2f rest_cpu_pct_router=%.2f rest_cpu_pct_redis=%.2f\n", \
        label, complete, target, hok, hfail, lost, live, nfe, gens, nofile, ramp_secs, rate, per_login, ktot, kfe, \
        kro, kre, redis_b, ktcp, rpct, restpct(1, nfe), restpct(nfe + 1, nfe + 1), restpct(np, np) >> results
}

# The RESULT lines of the linkgen processes of one router-rate / router-ceiling case
# (bench/run.sh, bench_router_link) summed into one: deliveries inside the common window
# from all generators; the router's and Redis's CPU, whole and by thread, as the first
# generator (the one with --watch) read them over its window.
# Variables: name, label, gens (generators started), rc (the worst exit status).
/^RESULT / {
    n++
    for (i = 2; i <= NF; i++) {
        split($i, kv, "=")
        v[kv[1]] = kv[2]
    }
    win += v["win_received"]
    rate += v["msgs_per_s"]
    lost += v["lost"]
    if (v["p99_ms"] + 0 > p99) p99 = v["p99_ms"] + 0
    if ("cpu_ms0" in v) {
        secs = v["duration_s"]; rcpu = v["cpu_ms0"]; rmain = v["main_ms0"]
        rio = v["zmq_io_ms0"]; dcpu = v["cpu_ms1"]; cap = v["rate_cap"]
        pairs = v["pairs"]; fes = v["frontends"]; w = v["window"]
    }
    split("", v)
}
END {
    if (n != gens || win == 0 || secs == 0) {
        printf "RESULT case=%s server=%s status=failed generators=%d rc=%d\n", name, label, n, rc
        exit
    }
    printf "RESULT case=%s server=%s generators=%d stand_ins=%d sessions=%d window=%d ", name, label, n, n * fes, 2 * pairs * n, w
    printf "rate_cap=%.0f msgs_per_s=%.0f lost=%d p99_ms=%.2f ", cap * n, rate, lost, p99
    printf "router_cpu_ms_per_1000_msgs=%.2f router_main_ms_per_1000=%.2f router_zmq_io_ms_per_1000=%.2f ", rcpu * 1000 / win, rmain * 1000 / win, rio * 1000 / win
    printf "router_pct=%.0f router_main_pct=%.0f router_zmq_io_pct=%.0f ", 100 * rcpu / (secs * 1000), 100 * rmain / (secs * 1000), 100 * rio / (secs * 1000)
    printf "redis_cpu_ms_per_1000=%.3f main_thread_ceiling_msgs_per_s=%.0f\n", dcpu * 1000 / win, (rmain > 0 ? win / (rmain / 1000) : 0)
}

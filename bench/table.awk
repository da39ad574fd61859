# Side-by-side table of RESULT lines: one input file per server, the first one ours.
# Lines look like "RESULT case=msg server=ours key=value ...". For each further server a
# ratio column "theirs / ours" follows its figures.
BEGIN {
    nrows = split("login-scram:logins_per_s:logins per second (STARTTLS, SCRAM-SHA-256)|" \
        "login-scram:cpu_ms_per_login:server CPU ms per login (STARTTLS, SCRAM-SHA-256)|" \
        "login-scram:fail:failed logins (STARTTLS, SCRAM-SHA-256)|" \
        "login-plain:cpu_ms_per_login:server CPU ms per login (STARTTLS, PLAIN)|" \
        "login-notls:cpu_ms_per_login:server CPU ms per login (no TLS, SCRAM-SHA-256)|" \
        "login-wss:cpu_ms_per_login:server CPU ms per login (wss, SCRAM-SHA-256)|" \
        "login-wss:cpu_ratio:server CPU per login, wss / STARTTLS (login-scram)|" \
        "login-wss:fail:failed logins (wss)|" \
        "idle:kib_per_session:KiB per idle STARTTLS session|" \
        "idle-wss:kib_per_session:KiB per idle wss session|" \
        "idle-wss:kib_ratio:KiB per idle session, wss / STARTTLS (idle)|" \
        "msg:msgs_per_s:messages per second|" \
        "msg:p50_ms:message latency p50 (ms)|" \
        "msg:p99_ms:message latency p99 (ms)|" \
        "msg:cpu_ms_per_1000_msgs:server CPU ms per 1000 messages|" \
        "msg:lost:messages lost|" \
        "msg-each:msgs_per_s:messages per second, one stanza per client write|" \
        "msg-each:cpu_ms_per_1000_msgs:server CPU ms per 1000 msgs, one stanza per write|" \
        "msg-each:cpu_ratio:CPU per message, one stanza per write / batched|" \
        "msg-each:lost:messages lost, one stanza per write|" \
        "msg-ws:msgs_per_s:messages per second, wss <-> STARTTLS pairs|" \
        "msg-ws:p99_ms:message latency p99 (ms), wss <-> STARTTLS|" \
        "msg-ws:cpu_ms_per_1000_msgs:server CPU ms per 1000 messages, wss <-> STARTTLS|" \
        "msg-ws:cpu_ratio:server CPU per message, wss <-> STARTTLS / msg|" \
        "msg-ws:lost:messages lost, wss <-> STARTTLS|" \
        "msg-mam:msgs_per_s:messages per second, XEP-0313 archive on|" \
        "msg-mam:cpu_ms_per_1000_msgs:server CPU ms per 1000 messages, archive on|" \
        "msg-mam:cpu_ratio:server CPU per message, archive on / off (msg)|" \
        "msg-mam-memory:redis_bytes_per_message:Redis bytes per archived message (both copies)|" \
        "mam-query:redis_bytes_per_entry:Redis bytes per archive entry (100,000 filled)|" \
        "mam-query:last50_p50_ms:query the last 50 of 100,000 archived, p50 (ms)|" \
        "mam-query:last50_p99_ms:query the last 50 of 100,000 archived, p99 (ms)|" \
        "mam-query:last50_with_p50_ms:the same with a 'with' filter, p50 (ms)|" \
        "mam-query:last50_with_p99_ms:the same with a 'with' filter, p99 (ms)|" \
        "upload:put_mb_per_s:XEP-0363 upload of a 10 MB file, PUT MB/s (median)|" \
        "upload:get_mb_per_s:XEP-0363 download of a 10 MB file, GET MB/s (median)|" \
        "upload:cpu_ms_per_mb:upload process CPU ms per MB moved|" \
        "msg-sm:msgs_per_s:messages per second, XEP-0198 on both ends|" \
        "msg-sm:cpu_ms_per_1000_msgs:server CPU ms per 1000 messages, XEP-0198 on|" \
        "msg-sm:cpu_ratio:server CPU per message, XEP-0198 on / off|" \
        "msg-sm:lost:messages lost, XEP-0198 on|" \
        "sm-resume:kib_per_waiting_session:router KiB per session waiting for resumption|" \
        "sm-resume:one_reconnect_to_resumed_p50_ms:reconnect (TLS, SASL) to <resumed/> p50 (ms)|" \
        "sm-resume:one_reconnect_to_resumed_p99_ms:reconnect (TLS, SASL) to <resumed/> p99 (ms)|" \
        "sm-resume:one_resume_to_resumed_p99_ms:<resume/> to <resumed/> p99 (ms)|" \
        "sm-resume:reconnect_to_resumed_p99_ms:all waiting sessions at once, reconnect to <resumed/> p99 (ms)|" \
        "presence:fanout_p99_ms:presence fan-out to all contacts p99 (ms)|" \
        "presence:cpu_ms_per_1000_deliveries:server CPU ms per 1000 presence deliveries|" \
        "pep:fanout_p99_ms:PEP notification fan-out to 50 contacts p99 (ms)|" \
        "pep:cpu_ms_per_1000_deliveries:server CPU ms per 1000 PEP notifications|" \
        "muc:fanout_p99_ms:room message reflected to 50 occupants p99 (ms)|" \
        "muc:cpu_ms_per_1000_deliveries:server CPU ms per 1000 room deliveries|" \
        "router-rate:router_cpu_ms_per_1000_msgs:router alone (linkgen), CPU ms per 1000 messages at a fixed rate|" \
        "router-ceiling:msgs_per_s:router alone (linkgen), messages per second, closed loop|" \
        "router-ceiling:router_cpu_ms_per_1000_msgs:router alone (linkgen), CPU ms per 1000 messages, closed loop|" \
        "router-ceiling:router_main_pct:router alone (linkgen), main thread % of a core, closed loop|" \
        "router-ceiling:main_thread_ceiling_msgs_per_s:router alone (linkgen), messages per second of main-thread CPU|" \
        "scale:reached:concurrent TLS sessions reached|" \
        "scale:kib_per_session:KiB per session at scale|" \
        "scale:rest_cpu_pct:server CPU at rest (% of one core)|" \
        "scale100k:reached:sessions reached (scale100k)|" \
        "scale100k:logins_per_s:logins per second while ramping (scale100k)|" \
        "scale100k:cpu_ms_per_login:server CPU ms per login while ramping (scale100k)|" \
        "scale100k:kib_per_session:KiB per session, all server processes (scale100k)|" \
        "scale100k:rest_cpu_pct:server CPU at rest, % of one core (scale100k)", rows, "|")
}
FNR == 1 { nf++ }
/^RESULT / {
    c = ""; s = ""
    for (i = 2; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "case") c = kv[2]
        if (kv[1] == "server") s = kv[2]
    }
    if (s != "" && !(nf in label)) label[nf] = s
    ran[c] = 1
    for (i = 2; i <= NF; i++) {
        eq = index($i, "=")
        v[nf, c, substr($i, 1, eq - 1)] = substr($i, eq + 1)
    }
}
function cell(f, c, k) {
    if ((f, c, k) in v) return v[f, c, k]
    if ((f, c, "status") in v) return "n/a (" v[f, c, "status"] ")"
    return "-"
}
function ratio(f, c, base, k, out) {
    if ((f, c, k) in v && (f, base, k) in v && v[f, base, k] + 0 > 0)
        v[f, c, out] = sprintf("%.2f", v[f, c, k] / v[f, base, k])
}
function isnum(x) { return x ~ /^-?[0-9]+(\.[0-9]+)?$/ }
END {
    # Derived: what stream management costs per message, from the two msg runs.
    for (f = 1; f <= nf; f++)
        if ((f, "msg-sm", "cpu_ms_per_1000_msgs") in v && (f, "msg", "cpu_ms_per_1000_msgs") in v \
            && v[f, "msg", "cpu_ms_per_1000_msgs"] + 0 > 0)
            v[f, "msg-sm", "cpu_ratio"] = sprintf("%.2f", v[f, "msg-sm", "cpu_ms_per_1000_msgs"] / v[f, "msg", "cpu_ms_per_1000_msgs"])
    for (f = 1; f <= nf; f++)
        if ((f, "msg-mam", "cpu_ms_per_1000_msgs") in v && (f, "msg", "cpu_ms_per_1000_msgs") in v \
            && v[f, "msg", "cpu_ms_per_1000_msgs"] + 0 > 0)
            v[f, "msg-mam", "cpu_ratio"] = sprintf("%.2f", v[f, "msg-mam", "cpu_ms_per_1000_msgs"] / v[f, "msg", "cpu_ms_per_1000_msgs"])
    # Derived: WebSocket over TLS against STARTTLS TCP, per login, idle session and message.
    for (f = 1; f <= nf; f++) {
        ratio(f, "login-wss", "login-scram", "cpu_ms_per_login", "cpu_ratio")
        ratio(f, "idle-wss", "idle", "kib_per_session", "kib_ratio")
        ratio(f, "msg-ws", "msg", "cpu_ms_per_1000_msgs", "cpu_ratio")
        ratio(f, "msg-each", "msg", "cpu_ms_per_1000_msgs", "cpu_ratio")
    }
    printf "%-52s", "figure"
    for (f = 1; f <= nf; f++) {
        printf " %20s", (f in label) ? label[f] : "server" f
        if (f > 1) printf " %9s", "x ours"
    }
    printf "\n"
    for (r = 1; r <= nrows; r++) {
        split(rows[r], p, ":")
        # Cases not in the default list (scale100k) only when some run has them.
        if (p[1] == "scale100k" && !(p[1] in ran)) continue
        printf "%-52s", p[3]
        ours = cell(1, p[1], p[2])
        for (f = 1; f <= nf; f++) {
            x = cell(f, p[1], p[2])
            printf " %20s", x
            if (f > 1) {
                if (isnum(x) && isnum(ours) && ours + 0 > 0)
                    printf " %9.2f", x / ours
                else
                    printf " %9s", ""
            }
        }
        printf "\n"
    }
}

/* What every XEP-0313 archive of the router shares (mamq.h). */
#include "mamq.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stanza.h"
#include "util.h"

#define NS_XDATA_ "jabber:x:data"

/* ---- ids ---- */

static mamq_id_t last_id;

uint64_t mamq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

mamq_id_t mamq_next_id(void)
{
    uint64_t ms = mamq_now_ms();
    if (ms > last_id.ms) {
        last_id.ms = ms;
        last_id.seq = 0;
    } else {
        last_id.seq++;
    }
    return last_id;
}

int mamq_id_parse(const char *s, mamq_id_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long ms = strtoull(s, &end, 10);
    if (errno || *end != '-' || !isdigit((unsigned char)end[1]))
        return -1;
    const char *q = end + 1;
    unsigned long long seq = strtoull(q, &end, 10);
    if (errno || *end || end - s > MAMQ_ID_MAX - 1)
        return -1;
    out->ms = ms;
    out->seq = seq;
    return 0;
}

void mamq_id_fmt(mamq_id_t id, char *out)
{
    snprintf(out, MAMQ_ID_MAX, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
}

int mamq_id_cmp(mamq_id_t a, mamq_id_t b)
{
    return a.ms != b.ms ? (a.ms < b.ms ? -1 : 1) : a.seq != b.seq ? (a.seq < b.seq ? -1 : 1) : 0;
}

mamq_id_t mamq_id_next(mamq_id_t a)
{
    if (a.seq == UINT64_MAX) {
        a.ms++;
        a.seq = 0;
    } else {
        a.seq++;
    }
    return a;
}

int mamq_id_prev(mamq_id_t *a)
{
    if (a->seq > 0) {
        a->seq--;
        return 0;
    }
    if (a->ms == 0)
        return -1;
    a->ms--;
    a->seq = UINT64_MAX;
    return 0;
}

mamq_id_t mamq_min_kept(long expires_after, uint64_t now)
{
    mamq_id_t m = {0, 0};
    if (expires_after > 0 && now > (uint64_t)expires_after * 1000u)
        m.ms = now - (uint64_t)expires_after * 1000u;
    return m;
}

/* ---- date-times ---- */

int mamq_parse_datetime(const char *s, int64_t *ms_out)
{
    int Y, M, D, h, m, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 ||
        n != 19)
        return -1;
    const char *p = s + n;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (!digits || digits > 9)
            return -1;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
            return -1;
        off = (oh * 60L + om) * 60L * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h < 0 || h > 23 || m < 0 || m > 59 ||
        sec < 0 || sec > 60 || Y < 1970)
        return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h,
                    .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != D) /* 31 February and the like */
        return -1;
    int64_t v = ((int64_t)t - off) * 1000 + frac_ms;
    if (v < 0)
        return -1;
    *ms_out = v;
    return 0;
}

void mamq_fmt_datetime(uint64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000u));
}

char *mamq_text(const xml_node_t *n)
{
    char *t = xml_node_text(n);
    char *a = t;
    while (isspace((unsigned char)*a))
        a++;
    size_t l = strlen(a);
    while (l && isspace((unsigned char)a[l - 1]))
        l--;
    char *r = xstrndup(a, l);
    free(t);
    return r;
}

/* ---- what is kept ---- */

static int is(const xml_node_t *ch, const char *name, const char *ns)
{
    return strcmp(ch->name, name) == 0 && strcmp(ch->ns, ns) == 0;
}

int mamq_worth(const xml_node_t *st, int subject)
{
    int want = 0;
    for (const xml_node_t *ch = st->children; ch; ch = ch->next) {
        if (!ch->name || !ch->ns)
            continue;
        if (is(ch, "sent", NS_CARBONS) || is(ch, "received", NS_CARBONS) ||
            is(ch, "no-store", "urn:xmpp:hints") ||
            is(ch, "no-permanent-store", "urn:xmpp:hints"))
            return 0;
        if (is(ch, "body", XML_NS_CLIENT) || is(ch, "encrypted", "eu.siacs.conversations.axolotl") ||
            is(ch, "encrypted", "urn:xmpp:omemo:2") || is(ch, "openpgp", "urn:xmpp:openpgp:0") ||
            is(ch, "x", "jabber:x:encrypted") || is(ch, "replace", "urn:xmpp:message-correct:0") ||
            is(ch, "retract", "urn:xmpp:message-retract:1") ||
            is(ch, "retract", "urn:xmpp:message-retract:0") ||
            is(ch, "reactions", "urn:xmpp:reactions:0") ||
            (subject && is(ch, "subject", XML_NS_CLIENT)))
            want = 1;
        /* XEP-0424 version 0.3 and earlier wrapped <retract/> in XEP-0422 <apply-to/>. */
        if (is(ch, "apply-to", "urn:xmpp:fasten:0") &&
            xml_node_child(ch, "retract", "urn:xmpp:message-retract:0"))
            want = 1;
    }
    return want;
}

/* ---- queries (XEP-0313 "Querying an archive") ---- */

void mamq_query_free(mamq_query_t *q)
{
    for (int i = 0; i < q->nids; i++)
        free(q->ids[i]);
    free(q->ids);
    q->ids = NULL;
    q->nids = 0;
}

int mamq_query_parse(const xml_node_t *q, long max_page, mamq_id_t min_kept, mamq_query_t *out,
                     const char **etype, const char **cond)
{
    memset(out, 0, sizeof *out);
    const char *bad = NULL, *btype = "modify";
    mamq_id_t lo = min_kept, hi = {UINT64_MAX, UINT64_MAX};
    int seen_after = 0, seen_before = 0;
    out->queryid = xml_node_attr(q, "queryid");
    out->flip = xml_node_child(q, "flip-page", NS_MAM) != NULL;
    const xml_node_t *x = xml_node_child(q, "x", NS_XDATA_);
    for (const xml_node_t *f = x ? x->children : NULL; f && !bad; f = f->next) {
        if (!f->name || strcmp(f->name, "field") != 0)
            continue;
        const char *var = xml_node_attr(f, "var");
        const xml_node_t *v = xml_node_child(f, "value", NS_XDATA_);
        char *val = v ? mamq_text(v) : xstrdup("");
        if (!var) {
            bad = "bad-request";
        } else if (strcmp(var, "FORM_TYPE") == 0) {
            if (strcmp(val, NS_MAM) != 0)
                bad = "bad-request";
        } else if (strcmp(var, "with") == 0) {
            jid_t j;
            if (jid_parse(&j, val) < 0 || jid_full(&j, out->with_full, sizeof out->with_full) < 0 ||
                jid_bare(&j, out->with_bare, sizeof out->with_bare) < 0)
                bad = "bad-request";
            else if (!*j.resource)
                out->with_full[0] = '\0'; /* a bare JID matches every resource (XEP-0313 "Filtering by JID") */
        } else if (strcmp(var, "start") == 0 || strcmp(var, "end") == 0) {
            int64_t ms;
            if (mamq_parse_datetime(val, &ms) < 0)
                bad = "bad-request";
            else if (var[0] == 's' && (uint64_t)ms > lo.ms)
                lo = (mamq_id_t){(uint64_t)ms, 0};
            else if (var[0] == 'e' && mamq_id_cmp((mamq_id_t){(uint64_t)ms, UINT64_MAX}, hi) < 0)
                hi = (mamq_id_t){(uint64_t)ms, UINT64_MAX};
        } else if (strcmp(var, "after-id") == 0 || strcmp(var, "before-id") == 0) {
            mamq_id_t a;
            int *seen = var[0] == 'a' ? &seen_after : &seen_before;
            if ((*seen)++) {
                /* One value each (XEP-0004: a field is given once); `must` holds four. */
                bad = "bad-request";
            } else if (mamq_id_parse(val, &a) < 0) {
                bad = "item-not-found";
                btype = "cancel";
            } else {
                out->must[out->nmust++] = a;
                if (var[0] == 'a') {
                    a = mamq_id_next(a);
                    if (mamq_id_cmp(a, lo) > 0)
                        lo = a;
                } else if (mamq_id_prev(&a) < 0) {
                    hi = (mamq_id_t){0, 0}, lo = (mamq_id_t){0, 1};
                } else if (mamq_id_cmp(a, hi) < 0) {
                    hi = a;
                }
            }
        } else if (strcmp(var, "ids") == 0) {
            out->have_ids = 1;
            for (const xml_node_t *vv = f->children; vv && !bad; vv = vv->next) {
                if (!vv->name || strcmp(vv->name, "value") != 0)
                    continue;
                if (out->nids >= max_page) {
                    bad = "policy-violation";
                    break;
                }
                char *t = mamq_text(vv);
                mamq_id_t a;
                if (mamq_id_parse(t, &a) < 0) { /* not one of ours: found nowhere */
                    free(t);
                    continue;
                }
                out->ids = xrealloc(out->ids, (size_t)(out->nids + 1) * sizeof *out->ids);
                out->ids[out->nids++] = t;
            }
        } else {
            bad = "bad-request"; /* a field the server does not support (XEP-0313) */
        }
        free(val);
    }
    out->max = max_page;
    const xml_node_t *set = xml_node_child(q, "set", NS_RSM);
    if (set && !bad) {
        const xml_node_t *m = xml_node_child(set, "max", NS_RSM);
        if (m) {
            char *t = mamq_text(m), *end;
            long v = strtol(t, &end, 10);
            if (!*t || *end || v < 0)
                bad = "bad-request";
            else if (v < out->max)
                out->max = v;
            free(t);
        }
        const xml_node_t *af = xml_node_child(set, "after", NS_RSM);
        const xml_node_t *bf = xml_node_child(set, "before", NS_RSM);
        if (af && !bad) {
            char *t = mamq_text(af);
            mamq_id_t a;
            if (mamq_id_parse(t, &a) < 0) {
                bad = "item-not-found";
                btype = "cancel";
            } else {
                out->must[out->nmust++] = a;
                a = mamq_id_next(a);
                if (mamq_id_cmp(a, lo) > 0)
                    lo = a;
            }
            free(t);
        }
        if (bf && !bad) {
            out->backward = 1; /* XEP-0059 2.5: an empty <before/> asks for the last page */
            char *t = mamq_text(bf);
            mamq_id_t a;
            if (*t && mamq_id_parse(t, &a) < 0) {
                bad = "item-not-found";
                btype = "cancel";
            } else if (*t) {
                out->must[out->nmust++] = a;
                if (mamq_id_prev(&a) < 0)
                    hi = (mamq_id_t){0, 0}, lo = (mamq_id_t){0, 1};
                else if (mamq_id_cmp(a, hi) < 0)
                    hi = a;
            }
            free(t);
        }
    }
    out->lo = lo;
    out->hi = hi;
    if (bad) {
        *etype = btype;
        *cond = bad;
        return -1;
    }
    return 0;
}

xml_node_t *mamq_form(void)
{
    xml_node_t *q = xml_node_new("query", NS_MAM);
    xml_node_t *x = xml_node_new_child(q, "x", NS_XDATA_);
    xml_node_set_attr(x, "type", "form");
    static const char *const fields[][2] = {
        {"FORM_TYPE", "hidden"},   {"with", "jid-single"},     {"start", "text-single"},
        {"end", "text-single"},    {"before-id", "text-single"}, {"after-id", "text-single"},
        {"ids", "text-multi"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        xml_node_t *f = xml_node_new_child(x, "field", NS_XDATA_);
        xml_node_set_attr(f, "var", fields[i][0]);
        xml_node_set_attr(f, "type", fields[i][1]);
        if (i == 0) {
            xml_node_t *v = xml_node_new_child(f, "value", NS_XDATA_);
            xml_node_add_text(v, NS_MAM, strlen(NS_MAM));
        }
    }
    return q;
}

void mamq_result_text(buf_t *b, const char *to, const char *from, const char *queryid,
                      const char *id, const char *xml, size_t xlen)
{
    mamq_id_t sid = {0, 0};
    mamq_id_parse(id, &sid);
    char stamp[80];
    mamq_fmt_datetime(sid.ms, stamp, sizeof stamp);
    buf_append_str(b, "<message to='");
    xml_escape(b, to, strlen(to));
    buf_append_str(b, "' from='");
    xml_escape(b, from, strlen(from));
    buf_append_str(b, "'><result xmlns='" NS_MAM "'");
    if (queryid) {
        buf_append_str(b, " queryid='");
        xml_escape(b, queryid, strlen(queryid));
        buf_append_str(b, "'");
    }
    buf_append_str(b, " id='");
    xml_escape(b, id, strlen(id));
    buf_printf(b, "'><forwarded xmlns='" NS_FORWARD "'><delay xmlns='" NS_DELAY "' stamp='%s'/>",
               stamp);
    /* Stored serialised for jabber:client: its top element names no namespace. */
    if (xlen > 8 && strncmp(xml, "<message", 8) == 0) {
        buf_append_str(b, "<message xmlns='jabber:client'");
        buf_append(b, xml + 8, xlen - 8);
    }
    buf_append_str(b, "</forwarded></result></message>");
}

xml_node_t *mamq_fin(const char *first, const char *last, int complete)
{
    xml_node_t *fin = xml_node_new("fin", NS_MAM);
    /* XEP-0313 <fin complete='true'/>: when the page reaches the end of the results in the
     * direction of paging (the last, or with 'before' the first). */
    if (complete)
        xml_node_set_attr(fin, "complete", "true");
    xml_node_t *set = xml_node_new_child(fin, "set", NS_RSM);
    if (first && last) {
        xml_node_t *f = xml_node_new_child(set, "first", NS_RSM);
        xml_node_add_text(f, first, strlen(first));
        xml_node_t *l = xml_node_new_child(set, "last", NS_RSM);
        xml_node_add_text(l, last, strlen(last));
    } else if (complete) {
        /* An empty page with nothing beyond it. An empty page with more beyond (max=0,
         * XEP-0059 2.7, which asks for the count) gets an empty <set/>: the count is not
         * computed, and 0 would be wrong. */
        xml_node_t *c = xml_node_new_child(set, "count", NS_RSM);
        xml_node_add_text(c, "0", 1);
    }
    return fin;
}

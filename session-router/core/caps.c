/* Entity capabilities (XEP-0115) of the available sessions (caps.h). */
#include "caps.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "deliver.h"
#include "hook.h"
#include "iqreq.h"
#include "keys.h"
#include "log.h"
#include "scram.h"
#include "stanza.h"
#include "util.h"

#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DATA "jabber:x:data"
#define CAPS_VER_MAX 128       /* base64 of a SHA-512 is 88 characters */
#define CAPS_ITEMS_MAX 1000    /* identities, features, form fields in one answer */
#define CAPS_QUERY_MS 30000    /* how long a client has to answer the disco#info query */
#define CAPS_REDIS_TTL 2592000 /* a verified hash is kept 30 days after it was last learnt */

const config_key_t caps_config_keys[] = {
    CONFIG_INT("caps_cache_max", "4096", 16, 1000000, "verified entity capabilities hashes (XEP-0115) the router keeps in memory beyond those in use (all are also kept in Redis)"),
    CONFIG_END,
};

/* A verified hash and the features it names. */
struct caps_entry {
    char *key; /* "HASH VER" */
    char **features;
    size_t n;
    unsigned refs; /* sessions pointing at it */
};
typedef struct caps_entry caps_entry_t;

static hmap_t *known; /* key -> caps_entry_t */
static size_t cache_max;

static void entry_free(void *v)
{
    caps_entry_t *e = v;
    for (size_t i = 0; i < e->n; i++)
        free(e->features[i]);
    free(e->features);
    free(e->key);
    free(e);
}

static int unused(void *v, void *ud)
{
    (void)ud;
    return ((caps_entry_t *)v)->refs == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Takes the features (sorted) into a new entry in the table. */
static caps_entry_t *entry_add(const char *key, char **features, size_t n)
{
    if (hmap_count(known) >= cache_max)
        hmap_filter(known, unused, NULL); /* those no session uses go first */
    caps_entry_t *e = xcalloc(1, sizeof *e);
    e->key = xstrdup(key);
    e->features = features;
    e->n = n;
    caps_entry_t *old = hmap_sput(known, e->key, e);
    if (old) { /* learnt twice at once: the older stays in use where it is */
        hmap_sput(known, old->key, old);
        entry_free(e);
        return old;
    }
    return e;
}

static void release(session_t *s)
{
    if (s->caps)
        s->caps->refs--;
    s->caps = NULL;
}

/* The session now has `e`'s features; modules hear of it unless `quiet` (a resync: the
 * client saw everything already). */
static void session_set(session_t *s, caps_entry_t *e, int quiet)
{
    xfree(&s->caps_wait);
    if (s->caps == e)
        return;
    release(s);
    s->caps = e;
    e->refs++;
    if (!quiet && s->available)
        hook_run(HOOK_CAPS_CHANGED, &(hook_ev_t){.session = s, .user = s->user});
}

int caps_has_feature(const session_t *s, const char *var)
{
    if (!s->available || !s->caps)
        return 0;
    return bsearch(&var, s->caps->features, s->caps->n, sizeof *s->caps->features, cmp_str) !=
           NULL;
}

const char *const *caps_features(const session_t *s, size_t *n)
{
    *n = s->caps ? s->caps->n : 0;
    return s->caps ? (const char *const *)s->caps->features : NULL;
}

/* The OpenSSL digest of a hash name of the IANA registry XEP-0115 uses ("sha-1", ...);
 * NULL for those we do not take (md5 among them: XEP-0115 section 5.2 step 3 lets us). */
static const EVP_MD *digest_of(const char *name)
{
    static const struct {
        const char *iana;
        const EVP_MD *(*md)(void);
    } table[] = {
        {"sha-1", EVP_sha1},     {"sha-224", EVP_sha224}, {"sha-256", EVP_sha256},
        {"sha-384", EVP_sha384}, {"sha-512", EVP_sha512},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].iana, name) == 0)
            return table[i].md();
    return NULL;
}

static void redis_key(char *out, size_t n, const char *key)
{
    /* "HASH VER" -> PREFIX caps:HASH:VER */
    char name[CAPS_VER_MAX + 64];
    snprintf(name, sizeof name, "%s%s", KEYS_CAPS, key);
    char *sp = strchr(name, ' ');
    if (sp)
        *sp = ':';
    keys_global(out, n, rt.redis_prefix, name);
}

/* ---- learning an unknown hash ---- */

typedef struct {
    char *full, *key, *node;
    int quiet;
} learn_t;

static void learn_free(learn_t *l)
{
    free(l->full);
    free(l->key);
    free(l->node);
    free(l);
}

/* The session that asked, if it still waits for this very hash. */
static session_t *learn_session(const learn_t *l)
{
    session_t *s = session_find_jid(l->full);
    return s && s->caps_wait && strcmp(s->caps_wait, l->key) == 0 ? s : NULL;
}

/* A list of strings to sort and join (the verification string's parts). */
typedef struct {
    char **v;
    size_t n, cap;
} strs_t;

static void strs_add(strs_t *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

static void strs_free(strs_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (strs_t){0};
}

/* Sorts; 0 when two are equal (XEP-0115 5.4 step 3.3/3.4: such an answer is refused). */
static int strs_sort_unique(strs_t *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_str);
    for (size_t i = 1; i < l->n; i++)
        if (strcmp(l->v[i - 1], l->v[i]) == 0)
            return 0;
    return 1;
}

static char *attr_or_empty(const xml_node_t *n, const char *name)
{
    const char *v = xml_node_attr(n, name);
    return xstrdup(v ? v : "");
}

/* One extended form (XEP-0115 5.1 step 6 / XEP-0128): its FORM_TYPE, then each field's var
 * and sorted values, into `out` ("" when the form does not count: no hidden FORM_TYPE).
 * Returns 0 when the form is malformed beyond use. */
static int form_string(const xml_node_t *x, buf_t *out, char **form_type)
{
    strs_t fields = {0};
    *form_type = NULL;
    int ok = 1, hidden = 0;
    for (const xml_node_t *f = x->children; f && ok; f = f->next) {
        if (!f->name || strcmp(f->name, "field") != 0 || !f->ns || strcmp(f->ns, NS_DATA) != 0)
            continue;
        const char *var = xml_node_attr(f, "var");
        if (!var)
            continue;
        strs_t values = {0};
        for (const xml_node_t *v = f->children; v; v = v->next)
            if (v->name && strcmp(v->name, "value") == 0 && values.n < CAPS_ITEMS_MAX)
                strs_add(&values, xml_node_text(v));
        if (strcmp(var, "FORM_TYPE") == 0) {
            const char *type = xml_node_attr(f, "type");
            /* 5.4 step 3.6: FORM_TYPE must be hidden, and given once. */
            if (*form_type || values.n != 1)
                ok = 0;
            else {
                *form_type = xstrdup(values.v[0]);
                hidden = type && strcmp(type, "hidden") == 0;
            }
        } else if (fields.n < CAPS_ITEMS_MAX) {
            qsort(values.v, values.n, sizeof *values.v, cmp_str);
            /* VAR \x01 VALUES: sorting these sorts by var (5.1 step 6), the \x01 becoming
             * '<' when appended. */
            buf_t fb = BUF_INIT;
            buf_printf(&fb, "%s\x01", var);
            for (size_t i = 0; i < values.n; i++)
                buf_printf(&fb, "%s<", values.v[i]);
            strs_add(&fields, buf_steal(&fb));
        }
        strs_free(&values);
    }
    if (ok && *form_type && hidden) {
        qsort(fields.v, fields.n, sizeof *fields.v, cmp_str);
        buf_printf(out, "%s<", *form_type);
        for (size_t i = 0; i < fields.n; i++) {
            *strchr(fields.v[i], '\x01') = '<';
            buf_append_str(out, fields.v[i]);
        }
    } else if (ok) {
        xfree(form_type); /* not counted (5.4 step 3.6: ignore the form) */
    }
    strs_free(&fields);
    return ok;
}

/* XEP-0115 section 5.1: the verification string of a disco#info answer in `out` (and in
 * `alt` with the identities ordered as joined strings), and its features (sorted, taken by
 * the caller). Returns 0 when the answer must be refused (5.4). */
static int verification_string(const xml_node_t *query, buf_t *out, buf_t *alt,
                               strs_t *features)
{
    strs_t ids = {0}, forms = {0}, types = {0};
    int ok = 1;
    for (const xml_node_t *c = query->children; c && ok; c = c->next) {
        if (!c->name || !c->ns)
            continue;
        if (strcmp(c->ns, NS_DISCO_INFO) == 0 && strcmp(c->name, "identity") == 0) {
            char *cat = attr_or_empty(c, "category"), *type = attr_or_empty(c, "type"),
                 *name = attr_or_empty(c, "name");
            const char *lang = xml_node_attr_ns(c, XML_NS_XML, "lang");
            /* Held as CATEGORY \x01 TYPE \x01 LANG \x01 NAME: sorting these sorts by
             * category, then type, then lang (5.1 step 2); '/' goes in when joined. */
            buf_t b = BUF_INIT;
            buf_printf(&b, "%s\x01%s\x01%s\x01%s", cat, type, lang ? lang : "", name);
            free(cat);
            free(type);
            free(name);
            if (ids.n < CAPS_ITEMS_MAX)
                strs_add(&ids, buf_steal(&b));
            else {
                buf_free(&b);
                ok = 0;
            }
        } else if (strcmp(c->ns, NS_DISCO_INFO) == 0 && strcmp(c->name, "feature") == 0) {
            const char *var = xml_node_attr(c, "var");
            /* A feature holding a newline could not be stored one per line. */
            if (!var || strchr(var, '\n') || features->n >= CAPS_ITEMS_MAX)
                ok = 0;
            else
                strs_add(features, xstrdup(var));
        } else if (strcmp(c->ns, NS_DATA) == 0 && strcmp(c->name, "x") == 0) {
            buf_t fb = BUF_INIT;
            char *form_type = NULL;
            if (!form_string(c, &fb, &form_type) || forms.n >= CAPS_ITEMS_MAX) {
                ok = 0;
                buf_free(&fb);
            } else if (form_type) {
                strs_add(&types, form_type);
                strs_add(&forms, buf_steal(&fb));
            } else {
                buf_free(&fb);
            }
        }
    }
    /* 5.4 steps 3.3-3.5: no identity or feature twice, no two forms of one FORM_TYPE. */
    ok = ok && strs_sort_unique(&ids) && strs_sort_unique(features) && strs_sort_unique(&types);
    if (ok) {
        qsort(forms.v, forms.n, sizeof *forms.v, cmp_str); /* by FORM_TYPE, which leads */
        for (int pass = 0; pass < 2; pass++) {
            buf_t *o = pass ? alt : out;
            if (pass) {
                /* Some clients sort the joined "category/type/lang/name" strings instead,
                 * which orders differently where one category or type is a prefix of
                 * another: that order is tried too. */
                for (size_t i = 0; i < ids.n; i++)
                    for (char *p = ids.v[i]; *p; p++)
                        if (*p == '\x01')
                            *p = '/';
                qsort(ids.v, ids.n, sizeof *ids.v, cmp_str);
            }
            for (size_t i = 0; i < ids.n; i++) {
                size_t at = o->len;
                buf_printf(o, "%s<", ids.v[i]);
                for (size_t k = at; k < o->len; k++)
                    if (o->data[k] == '\x01')
                        o->data[k] = '/';
            }
            for (size_t i = 0; i < features->n; i++)
                buf_printf(o, "%s<", features->v[i]);
            for (size_t i = 0; i < forms.n; i++)
                buf_append_str(o, forms.v[i]);
        }
    }
    strs_free(&ids);
    strs_free(&forms);
    strs_free(&types);
    return ok;
}

/* 1 when base64(hash(S)) equals the ver that was sent. */
static int hash_matches(const char *key, const buf_t *s)
{
    char hash[32];
    const char *sp = strchr(key, ' ');
    size_t hl = (size_t)(sp - key);
    if (hl >= sizeof hash)
        return 0;
    memcpy(hash, key, hl);
    hash[hl] = '\0';
    const EVP_MD *md = digest_of(hash);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (!md || !EVP_Digest(s->data ? s->data : "", s->len, d, &dl, md, NULL))
        return 0;
    char *b64 = base64_encode(d, dl);
    int same = strcmp(b64, sp + 1) == 0;
    free(b64);
    return same;
}

static void store_verified(const caps_entry_t *e)
{
    if (!rt.redis || !rt.redis_ready)
        return;
    char rkey[512];
    redis_key(rkey, sizeof rkey, e->key);
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < e->n; i++)
        buf_printf(&b, "%s%s", i ? "\n" : "", e->features[i]);
    rt_redis_command(rt_redis_ignore, NULL, "SET %s %b EX %d", rkey, b.data ? b.data : "",
                      b.len, CAPS_REDIS_TTL);
    buf_free(&b);
}

static void on_disco(const xml_node_t *answer, void *arg)
{
    learn_t *l = arg;
    session_t *s = learn_session(l);
    const char *type = answer ? xml_node_attr(answer, "type") : NULL;
    const xml_node_t *query = answer ? xml_node_child(answer, "query", NS_DISCO_INFO) : NULL;
    if (!s) {
        learn_free(l);
        return;
    }
    if (!answer || !type || strcmp(type, "result") != 0 || !query) {
        log_debug("caps: %s did not tell what %s names", l->full, l->key);
        xfree(&s->caps_wait);
        learn_free(l);
        return;
    }
    buf_t vs = BUF_INIT, alt = BUF_INIT;
    strs_t features = {0};
    if (verification_string(query, &vs, &alt, &features) &&
        (hash_matches(l->key, &vs) || hash_matches(l->key, &alt))) {
        caps_entry_t *e = entry_add(l->key, features.v, features.n);
        if (e->features != features.v)
            strs_free(&features);
        store_verified(e);
        session_set(s, e, l->quiet);
    } else {
        /* 5.4 step 4: a hash that does not match is neither accepted nor cached. */
        log_info("caps: %s sent capabilities %s its features do not match: not used",
                 l->full, l->key);
        strs_free(&features);
        xfree(&s->caps_wait);
    }
    buf_free(&vs);
    buf_free(&alt);
    learn_free(l);
}

static void ask_client(session_t *s, learn_t *l)
{
    if (l->quiet) { /* after a resync nothing new is sent to the client */
        xfree(&s->caps_wait);
        learn_free(l);
        return;
    }
    xml_node_t *iq = xml_node_new("iq", XML_NS_CLIENT);
    xml_node_set_attr(iq, "type", "get");
    xml_node_t *q = xml_node_new_child(iq, "query", NS_DISCO_INFO);
    buf_t node = BUF_INIT;
    buf_printf(&node, "%s#%s", l->node, strchr(l->key, ' ') + 1);
    xml_node_set_attr(q, "node", node.data);
    buf_free(&node);
    iqreq_send(s, iq, CAPS_QUERY_MS, on_disco, l);
}

static void on_cached(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    learn_t *l = privdata;
    redisReply *r = reply;
    session_t *s = learn_session(l);
    if (!s) {
        learn_free(l);
        return;
    }
    if (r && r->type == REDIS_REPLY_STRING) {
        strs_t features = {0};
        const char *p = r->str, *end = r->str + r->len;
        while (p < end && features.n < CAPS_ITEMS_MAX) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            strs_add(&features, xstrndup(p, n));
            p += n + 1;
        }
        if (features.n)
            qsort(features.v, features.n, sizeof *features.v, cmp_str);
        caps_entry_t *e = entry_add(l->key, features.v, features.n);
        if (e->features != features.v)
            strs_free(&features);
        session_set(s, e, l->quiet);
        learn_free(l);
        return;
    }
    ask_client(s, l);
}

/* Reads the <c/> of an available presence and makes the session's features known. */
static void read_caps(session_t *s, const xml_node_t *st, int quiet)
{
    const xml_node_t *c = xml_node_child(st, "c", NS_CAPS);
    if (!c)
        return; /* a presence without <c/> changes nothing (clients send it each time) */
    const char *hash = xml_node_attr(c, "hash"), *node = xml_node_attr(c, "node"),
               *ver = xml_node_attr(c, "ver");
    /* Legacy capabilities (no 'hash', XEP-0115 section 8.4) name no verifiable set. */
    if (!hash || !node || !ver || !*ver || strlen(ver) > CAPS_VER_MAX || strchr(ver, ' ') ||
        strlen(node) > 1024 || !digest_of(hash))
        return;
    char key[CAPS_VER_MAX + 40];
    snprintf(key, sizeof key, "%s %s", hash, ver);
    if ((s->caps && strcmp(s->caps->key, key) == 0) ||
        (s->caps_wait && strcmp(s->caps_wait, key) == 0))
        return;
    caps_entry_t *e = hmap_sget(known, key);
    if (e) {
        session_set(s, e, quiet);
        return;
    }
    free(s->caps_wait);
    s->caps_wait = xstrdup(key);
    learn_t *l = xcalloc(1, sizeof *l);
    l->full = xstrdup(s->full);
    l->key = xstrdup(key);
    l->node = xstrdup(node);
    l->quiet = quiet;
    char rkey[512];
    redis_key(rkey, sizeof rkey, key);
    if (!rt.redis || !rt.redis_ready ||
        rt_redis_command(on_cached, l, "GET %s", rkey) != REDIS_OK)
        ask_client(s, l);
}

static mod_result_t on_presence(hook_ev_t *ev)
{
    read_caps(ev->session, ev->st, 0);
    return MOD_PASS;
}

/* After a router restart the session's last presence came back (resync.c): its
 * capabilities are taken from the cache without telling anyone. */
static mod_result_t on_resync(hook_ev_t *ev)
{
    session_t *s = ev->session;
    if (!s->available || !s->last_presence)
        return MOD_PASS;
    xml_node_t *st = stanza_parse(s->last_presence, strlen(s->last_presence));
    if (st)
        read_caps(s, st, 1);
    xml_node_free(&st);
    return MOD_PASS;
}

static mod_result_t on_freed(hook_ev_t *ev)
{
    release(ev->session);
    xfree(&ev->session->caps_wait);
    return MOD_PASS;
}

static const mod_hook_t hooks[] = {
    /* First among the presence hooks, so that modules running after it see the features. */
    {HOOK_PRESENCE_INITIAL, 1000, on_presence},
    {HOOK_PRESENCE_UPDATE, 1000, on_presence},
    {HOOK_SESSION_RESYNC, -1000, on_resync},
    {HOOK_SESSION_FREED, 0, on_freed},
    {0},
};

void caps_open(void)
{
    known = hmap_new();
    cache_max = (size_t)config_int("caps_cache_max");
    for (const mod_hook_t *h = hooks; h->fn; h++)
        hook_add(h, 0);
}

void caps_close(void)
{
    hmap_destroy_all(&known, entry_free);
}

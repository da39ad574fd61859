/* Entity capabilities (XEP-0115) of the available sessions (caps.h). */
#include "caps.h"

#include <stdlib.h>
#include <string.h>

#include "capsver.h"
#include "config.h"
#include "deliver.h"
#include "hook.h"
#include "iqreq.h"
#include "keys.h"
#include "log.h"
#include "stanza.h"
#include "util.h"

#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define CAPS_VER_MAX 128       /* base64 of a SHA-512 is 88 characters */
#define CAPS_FEATURES_MAX 1000 /* features read back from Redis */
#define CAPS_QUERY_MS 30000    /* how long a client has to answer the disco#info query */
#define CAPS_REDIS_TTL 2592000 /* a verified hash is kept 30 days after it was last learnt */
#define CAPS_STORED_MAX 8      /* new hashes one session may have kept in Redis: a client
                                  inventing hash after hash cannot fill it (the ones past
                                  this are used, and kept in memory only) */
#define CAPS_ASKING_MAX 4      /* queries outstanding to one full JID (each waits up to
                                  CAPS_QUERY_MS): a client announcing hash after hash is
                                  not asked more until it answers */

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
static hmap_t *asking; /* full JID -> unsigned: its queries outstanding (none: absent) */
static size_t cache_max;

static void entry_free(void *v)
{
    caps_entry_t *e = v;
    capsver_free(e->features, e->n);
    free(e->key);
    free(e);
}

/* hmap_filter: an entry no session uses goes (and is freed). */
static int unused(void *v, void *ud)
{
    (void)ud;
    if (((caps_entry_t *)v)->refs)
        return 0;
    entry_free(v);
    return 1;
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
        e->features = NULL; /* still the caller's: it frees them when handed `old` */
        e->n = 0;
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
    unsigned *asked = hmap_sget(asking, l->full);
    if (asked && --*asked == 0)
        free(hmap_sdel(asking, l->full));
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
    char hash[32], **features = NULL;
    size_t n = 0;
    const char *ver = strchr(l->key, ' ') + 1;
    snprintf(hash, sizeof hash, "%.*s", (int)(ver - 1 - l->key), l->key);
    if (capsver_check(query, hash, ver, &features, &n)) {
        caps_entry_t *e = entry_add(l->key, features, n);
        if (e->features != features)
            capsver_free(features, n);
        if (s->caps_stored < CAPS_STORED_MAX) {
            s->caps_stored++;
            store_verified(e);
        }
        session_set(s, e, l->quiet);
    } else {
        /* 5.4 step 4: a hash that does not match is neither accepted nor cached. */
        log_info("caps: %s sent capabilities %s its features do not match: not used",
                 l->full, l->key);
        xfree(&s->caps_wait);
    }
    learn_free(l);
}

static void ask_client(session_t *s, learn_t *l)
{
    unsigned *asked = hmap_sget(asking, l->full);
    if (l->quiet || (asked && *asked >= CAPS_ASKING_MAX)) {
        /* After a resync nothing new is sent to the client; past CAPS_ASKING_MAX the
         * hash stays unknown (the session keeps its features so far). */
        if (!l->quiet)
            log_info("caps: %s has %u queries unanswered: %s not asked", l->full, *asked,
                     l->key);
        xfree(&s->caps_wait);
        learn_free(l);
        return;
    }
    if (!asked) {
        asked = xcalloc(1, sizeof *asked);
        hmap_sput(asking, l->full, asked);
    }
    (*asked)++;
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
        char **features = NULL;
        size_t n = 0, cap = 0;
        const char *p = r->str, *end = r->str + r->len;
        while (p < end && n < CAPS_FEATURES_MAX) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                features = xrealloc(features, cap * sizeof *features);
            }
            features[n++] = xstrndup(p, len);
            p += len + 1;
        }
        if (n)
            qsort(features, n, sizeof *features, cmp_str);
        caps_entry_t *e = entry_add(l->key, features, n);
        if (e->features != features)
            capsver_free(features, n);
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
        strlen(node) > 1024 || !capsver_hash_supported(hash))
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

/* A presence names the session's capabilities; on initial presence with the same ones as
 * before (available again), the session is interested again as a new one would be
 * (XEP-0163 4.3: the last items when it comes online). */
static void on_presence(session_t *s, const xml_node_t *st, int initial)
{
    caps_entry_t *before = s->caps;
    read_caps(s, st, 0);
    if (initial && before && s->caps == before)
        hook_run(HOOK_CAPS_CHANGED, &(hook_ev_t){.session = s, .user = s->user});
}

static mod_result_t on_initial(hook_ev_t *ev)
{
    on_presence(ev->session, ev->st, 1);
    return MOD_PASS;
}

static mod_result_t on_update(hook_ev_t *ev)
{
    on_presence(ev->session, ev->st, 0);
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
    {HOOK_PRESENCE_INITIAL, 1000, on_initial},
    {HOOK_PRESENCE_UPDATE, 1000, on_update},
    {HOOK_SESSION_RESYNC, -1000, on_resync},
    {HOOK_SESSION_FREED, 0, on_freed},
    {0},
};

void caps_open(void)
{
    known = hmap_new();
    asking = hmap_new();
    cache_max = (size_t)config_int("caps_cache_max");
    for (const mod_hook_t *h = hooks; h->fn; h++)
        hook_add(h, 0);
}

void caps_close(void)
{
    hmap_destroy_all(&known, entry_free);
    hmap_destroy_all(&asking, free); /* empty once iqreq_close answered every query */
}

/* XEP-0398 (pep-vcard-conversion): avatars published with User Avatar (XEP-0084, in PEP)
 * and vCard-based avatars (XEP-0153) kept in step, and the avatar's hash put into the
 * user's available presence. The PEP side goes through the PEP hooks (core/hook.h), the
 * vCard side through the vCard key the vCard module keeps. */
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "modules.h"
#include "scram.h"
#include "stanza.h"
#include "storage.h"
#include "util.h"

#define NS_CONVERSION "urn:xmpp:pep-vcard-conversion:0"
#define NS_VCARD "vcard-temp"
#define NS_VCARD_UPDATE "vcard-temp:x:update"
#define NODE_DATA "urn:xmpp:avatar:data"
#define NODE_METADATA "urn:xmpp:avatar:metadata"
#define HASH_HEX 41

/* What is known of a user with sessions: the avatar's hash, and the last image published
 * to the data node (the metadata that names it comes right after, XEP-0084 4.1-4.2). */
typedef struct {
    int known;            /* the hash was read from Redis */
    char hash[HASH_HEX];  /* hex SHA-1 of the image, "" for none */
    unsigned refs;        /* sessions */
    char data_id[HASH_HEX];
    char *data_b64;       /* the data item's text, or NULL */
} avatar_t;

static hmap_t *users; /* bare JID -> avatar_t */

static void avatar_free(void *v)
{
    avatar_t *a = v;
    free(a->data_b64);
    free(a);
}

/* base64 text with the whitespace vCards put in it removed; NULL if not base64. */
static unsigned char *decode_b64(const char *text, size_t *n, char **clean_out)
{
    size_t len = strlen(text);
    char *clean = xcalloc(1, len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t')
            clean[k++] = text[i];
    unsigned char *bin = k ? base64_decode(clean, k, n) : NULL;
    if (bin && clean_out)
        *clean_out = clean;
    else
        free(clean);
    return bin;
}

static void sha1_hex(const unsigned char *d, size_t n, char out[HASH_HEX])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(d, n, md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void remember_hash(const char *bare, const char *hash)
{
    avatar_t *a = hmap_sget(users, bare);
    if (a) {
        snprintf(a->hash, sizeof a->hash, "%s", hash);
        a->known = 1;
    }
    char key[STORAGE_KEY_MAX];
    if (storage_key(key, KEYS_AVATAR_HASH, bare) >= 0 && rt.redis_ready)
        rt_redis_command(rt_redis_ignore, NULL, "SET %s %s", key, hash);
}

/* ---- PEP to vCard (section 3.1) ---- */

typedef struct {
    char *bare;
    char *type;     /* NULL: the avatar was switched off, the PHOTO goes */
    char *b64;
} photo_write_t;

static void on_vcard_read(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    photo_write_t *w = privdata;
    redisReply *r = reply;
    if (r && r->type != REDIS_REPLY_ERROR) {
        xml_node_t *vcard = r->type == REDIS_REPLY_STRING ? stanza_parse(r->str, r->len) : NULL;
        if (!vcard || !vcard->name || strcmp(vcard->name, "vCard") != 0) {
            xml_node_free(&vcard);
            vcard = xml_node_new("vCard", NS_VCARD);
        }
        xml_node_t *old;
        while ((old = xml_node_child(vcard, "PHOTO", NS_VCARD))) {
            xml_node_remove_child(vcard, old);
            xml_node_free(&old);
        }
        if (w->type) {
            xml_node_t *photo = xml_node_new_child(vcard, "PHOTO", NS_VCARD);
            xml_node_t *t = xml_node_new_child(photo, "TYPE", NS_VCARD);
            xml_node_add_text(t, w->type, strlen(w->type));
            xml_node_t *bin = xml_node_new_child(photo, "BINVAL", NS_VCARD);
            xml_node_add_text(bin, w->b64, strlen(w->b64));
        }
        char key[STORAGE_KEY_MAX];
        buf_t b = BUF_INIT;
        xml_serialize(vcard, XML_NS_CLIENT, &b);
        if (storage_key(key, KEYS_VCARD, w->bare) >= 0)
            rt_redis_command(rt_redis_ignore, NULL, "SET %s %b", key, b.data, b.len);
        buf_free(&b);
        xml_node_free(&vcard);
    } else {
        log_warn("avatar: the vCard of %s could not be read to update its photo", w->bare);
    }
    free(w->bare);
    free(w->type);
    free(w->b64);
    free(w);
}

static void vcard_set_photo(const char *bare, const char *type, const char *b64)
{
    char key[STORAGE_KEY_MAX];
    if (storage_key(key, KEYS_VCARD, bare) < 0 || !rt.redis_ready)
        return;
    photo_write_t *w = xcalloc(1, sizeof *w);
    w->bare = xstrdup(bare);
    w->type = type ? xstrdup(type) : NULL;
    w->b64 = b64 ? xstrdup(b64) : NULL;
    if (rt_redis_command(on_vcard_read, w, "GET %s", key) != REDIS_OK) {
        free(w->bare);
        free(w->type);
        free(w->b64);
        free(w);
    }
}

/* A data item: kept until the metadata naming it comes. */
static void data_published(avatar_t *a, const xml_node_t *item)
{
    const char *id = xml_node_attr(item, "id");
    const xml_node_t *data = xml_node_child(item, "data", NODE_DATA);
    if (!a || !id || !data || strlen(id) >= sizeof a->data_id)
        return;
    xfree(&a->data_b64);
    a->data_b64 = xml_node_text(data);
    snprintf(a->data_id, sizeof a->data_id, "%s", id);
}

/* A metadata item: the image of its info without a url goes into the vCard; an empty
 * metadata element (XEP-0084 4.5: the avatar switched off) takes the photo out. */
static void metadata_published(const char *bare, avatar_t *a, const xml_node_t *item)
{
    const xml_node_t *meta = xml_node_child(item, "metadata", NODE_METADATA);
    if (!meta)
        return;
    const xml_node_t *info = NULL;
    int any = 0;
    for (const xml_node_t *c = meta->children; c; c = c->next) {
        if (!c->name || strcmp(c->name, "info") != 0)
            continue;
        any = 1;
        if (!xml_node_attr(c, "url") && !info)
            info = c;
    }
    if (!any) {
        vcard_set_photo(bare, NULL, NULL);
        remember_hash(bare, "");
        return;
    }
    const char *id = info ? xml_node_attr(info, "id") : NULL;
    const char *type = info ? xml_node_attr(info, "type") : NULL;
    if (!id || !type || !a || !a->data_b64 || strcmp(a->data_id, id) != 0) {
        log_debug("avatar: %s published metadata for an image not seen here", bare);
        return;
    }
    /* "Services SHOULD verify that the SHA-1 hash of the image matches the id." */
    size_t n = 0;
    char *clean = NULL;
    unsigned char *bin = decode_b64(a->data_b64, &n, &clean);
    char hash[HASH_HEX];
    if (bin)
        sha1_hex(bin, n, hash);
    if (!bin || strcasecmp(hash, id) != 0) {
        log_info("avatar: %s published an image whose SHA-1 is not its id: not converted", bare);
    } else {
        vcard_set_photo(bare, type, clean);
        remember_hash(bare, hash);
    }
    free(bin);
    free(clean);
}

static mod_result_t on_pep_published(hook_ev_t *ev)
{
    /* Without a session a module published it: this one, from a vCard, which is stored
     * already. */
    if (!ev->session || !ev->node || !ev->st)
        return MOD_PASS;
    avatar_t *a = hmap_sget(users, ev->to);
    if (strcmp(ev->node, NODE_DATA) == 0)
        data_published(a, ev->st);
    else if (strcmp(ev->node, NODE_METADATA) == 0)
        metadata_published(ev->to, a, ev->st);
    return MOD_PASS;
}

/* ---- vCard to PEP (section 3.2) ---- */

static void pep_publish(const char *bare, const char *node, xml_node_t *item)
{
    hook_run(HOOK_PEP_PUBLISH, &(hook_ev_t){.to = bare, .node = node, .st = item});
    xml_node_free(&item);
}

/* A vCard the owner sets: its photo is published as the PEP avatar; the vCard module then
 * stores the vCard (this handler passes it on). */
static mod_result_t vcard_set(mod_iq_t *iq)
{
    if (iq->at == MOD_AT_ACCOUNT)
        return MOD_PASS;
    const char *bare = iq->from->user->bare;
    const xml_node_t *photo = xml_node_child(iq->payload, "PHOTO", NS_VCARD);
    const xml_node_t *binval = photo ? xml_node_child(photo, "BINVAL", NS_VCARD) : NULL;
    const xml_node_t *typel = photo ? xml_node_child(photo, "TYPE", NS_VCARD) : NULL;
    avatar_t *a = hmap_sget(users, bare);
    if (!binval) {
        if (a && a->known && a->hash[0]) { /* the photo was removed: so is the avatar */
            xml_node_t *item = xml_node_new("item", NULL);
            xml_node_set_attr(item, "id", "current");
            xml_node_new_child(item, "metadata", NODE_METADATA);
            pep_publish(bare, NODE_METADATA, item);
            remember_hash(bare, "");
        }
        return MOD_PASS;
    }
    char *text = xml_node_text(binval), *clean = NULL, *type = typel ? xml_node_text(typel) : NULL;
    size_t n = 0;
    unsigned char *bin = decode_b64(text, &n, &clean);
    free(text);
    if (bin && n) {
        char hash[HASH_HEX];
        sha1_hex(bin, n, hash);
        if (!a || !a->known || strcmp(a->hash, hash) != 0) {
            xml_node_t *item = xml_node_new("item", NULL);
            xml_node_set_attr(item, "id", hash);
            xml_node_t *data = xml_node_new_child(item, "data", NODE_DATA);
            xml_node_add_text(data, clean, strlen(clean));
            pep_publish(bare, NODE_DATA, item);
            item = xml_node_new("item", NULL);
            xml_node_set_attr(item, "id", hash);
            xml_node_t *info = xml_node_new_child(xml_node_new_child(item, "metadata",
                                                                     NODE_METADATA),
                                                  "info", NODE_METADATA);
            char bytes[32];
            snprintf(bytes, sizeof bytes, "%zu", n);
            xml_node_set_attr(info, "bytes", bytes);
            xml_node_set_attr(info, "id", hash);
            xml_node_set_attr(info, "type", type && *type ? type : "image/png");
            pep_publish(bare, NODE_METADATA, item);
            remember_hash(bare, hash);
        }
    }
    free(bin);
    free(clean);
    free(type);
    return MOD_PASS;
}

/* ---- presence (section 4) ---- */

/* Every available presence carries the hash unless it says <photo/> (no avatar, or not
 * ready to say): an <x/> without a photo is filled in, a different hash replaced. */
static mod_result_t on_presence(hook_ev_t *ev)
{
    const char *type = xml_node_attr(ev->st, "type");
    avatar_t *a = hmap_sget(users, ev->session->user->bare);
    if (type || !a || !a->known || !a->hash[0])
        return MOD_PASS;
    xml_node_t *x = xml_node_child(ev->st, "x", NS_VCARD_UPDATE);
    xml_node_t *photo = x ? xml_node_child(x, "photo", NS_VCARD_UPDATE) : NULL;
    if (photo) {
        char *have = xml_node_text(photo);
        int empty = !*have, same = strcmp(have, a->hash) == 0;
        free(have);
        if (empty || same)
            return MOD_PASS;
        xml_node_remove_child(x, photo);
        xml_node_free(&photo);
    }
    if (!x)
        x = xml_node_new_child(ev->st, "x", NS_VCARD_UPDATE);
    photo = xml_node_new_child(x, "photo", NS_VCARD_UPDATE);
    xml_node_add_text(photo, a->hash, strlen(a->hash));
    return MOD_PASS;
}

/* ---- the users with sessions ---- */

static void on_hash_read(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    char *bare = privdata;
    redisReply *r = reply;
    avatar_t *a = hmap_sget(users, bare);
    if (a && r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL)) {
        snprintf(a->hash, sizeof a->hash, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
        a->known = 1;
    }
    free(bare);
}

static mod_result_t on_bound(hook_ev_t *ev)
{
    const char *bare = ev->session->user->bare;
    avatar_t *a = hmap_sget(users, bare);
    if (!a) {
        a = xcalloc(1, sizeof *a);
        hmap_sput(users, bare, a);
        char key[STORAGE_KEY_MAX];
        char *arg = xstrdup(bare);
        if (storage_key(key, KEYS_AVATAR_HASH, bare) < 0 || !rt.redis_ready ||
            rt_redis_command(on_hash_read, arg, "GET %s", key) != REDIS_OK)
            free(arg);
    }
    a->refs++;
    return MOD_PASS;
}

static mod_result_t on_freed(hook_ev_t *ev)
{
    const char *bare = ev->session->user->bare;
    avatar_t *a = hmap_sget(users, bare);
    if (a && --a->refs == 0)
        avatar_free(hmap_sdel(users, bare));
    return MOD_PASS;
}

static mod_result_t on_user_deleted(hook_ev_t *ev)
{
    account_data_key(ev, KEYS_AVATAR_HASH);
    return MOD_PASS;
}

static void avatar_open(void)
{
    users = hmap_new();
}

static void avatar_close(void)
{
    hmap_destroy_all(&users, avatar_free);
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_VCARD, "vCard", MOD_SET, MOD_AT_SELF, vcard_set},
    {0},
};

static const mod_feature_t features[] = {
    {NS_CONVERSION, MOD_AT_SELF | MOD_AT_ACCOUNT, NULL},
    {0},
};

static const mod_hook_t hooks[] = {
    {HOOK_PEP_PUBLISHED, 0, on_pep_published},
    /* Before the presence module sends the presence on. */
    {HOOK_PRESENCE, 10, on_presence},
    {HOOK_SESSION_BOUND, 0, on_bound},
    {HOOK_SESSION_FREED, 0, on_freed},
    {HOOK_USER_DELETED, 0, on_user_deleted},
    {0},
};

module_t mod_avatar = {
    .name = "avatar",
    .iq = iq_handlers,
    .features = features,
    .hooks = hooks,
    .open = avatar_open,
    .close = avatar_close,
};

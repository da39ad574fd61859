/* XEP-0115 verification strings and hashes (capsver.h). */
#include "capsver.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"
#include "util.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DATA "jabber:x:data"
#define CAPS_ITEMS_MAX 1000 /* identities, features, form fields and values in one answer */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* qsort of an empty list may not be given a NULL array. */
static void sort_strs(char **v, size_t n)
{
    if (n)
        qsort(v, n, sizeof *v, cmp_str);
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
    sort_strs(l->v, l->n);
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
            sort_strs(values.v, values.n);
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
        sort_strs(fields.v, fields.n);
        buf_printf(out, "%s<", *form_type);
        for (size_t i = 0; i < fields.n; i++) {
            *strchr(fields.v[i], '\x01') = '<';
            buf_append_str(out, fields.v[i]);
        }
    } else {
        xfree(form_type); /* malformed, or not counted (5.4 step 3.6: ignore the form) */
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
                free(form_type);
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
        sort_strs(forms.v, forms.n); /* by FORM_TYPE, which leads */
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
                sort_strs(ids.v, ids.n);
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
static int hash_matches(const char *hash, const char *ver, const buf_t *s)
{
    const EVP_MD *md = digest_of(hash);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (!md || !EVP_Digest(s->data ? s->data : "", s->len, d, &dl, md, NULL))
        return 0;
    char *b64 = base64_encode(d, dl);
    int same = strcmp(b64, ver) == 0;
    free(b64);
    return same;
}

int capsver_hash_supported(const char *hash)
{
    return digest_of(hash) != NULL;
}

int capsver_check(const xml_node_t *query, const char *hash, const char *ver, char ***features,
                  size_t *n)
{
    buf_t vs = BUF_INIT, alt = BUF_INIT;
    strs_t f = {0};
    int ok = verification_string(query, &vs, &alt, &f) &&
             (hash_matches(hash, ver, &vs) || hash_matches(hash, ver, &alt));
    buf_free(&vs);
    buf_free(&alt);
    if (!ok) {
        strs_free(&f);
        return 0;
    }
    *features = f.v;
    *n = f.n;
    return 1;
}

void capsver_free(char **features, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(features[i]);
    free(features);
}

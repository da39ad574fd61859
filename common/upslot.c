/* The pure parts of an HTTP File Upload slot (upslot.h). */
#include "upslot.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 (overlong, surrogate, > U+10FFFF). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    /* C1 controls (U+0080..U+009F) are refused like the C0 ones. */
    if (cp >= 0x80 && cp <= 0x9F)
        return 0;
    return n;
}

int upslot_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > UPSLOT_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)name;
    while (*p) {
        if (*p < 0x20 || *p == 0x7F || *p == '/' || *p == '\\')
            return 0;
        size_t n = utf8_seq(p);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

int upslot_ctype_ok(const char *ct)
{
    size_t len = strlen(ct), i = 0;
    if (len == 0 || len > UPSLOT_CTYPE_MAX)
        return 0;
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)ct[k] < 0x20 || (unsigned char)ct[k] >= 0x7F)
            return 0;
    size_t start = i;
    while (is_tchar(ct[i]))
        i++;
    if (i == start || ct[i] != '/')
        return 0;
    start = ++i;
    while (is_tchar(ct[i]))
        i++;
    if (i == start)
        return 0;
    /* Parameters: anything printable after a ';' (checked above); the type must be clean. */
    while (ct[i] == ' ')
        i++;
    return ct[i] == '\0' || ct[i] == ';';
}

int upslot_sign(const char *secret, const char *id, const char *name, long long size,
                const char *ctype, long long expiry, const char *bare,
                char sig[UPSLOT_SIG_LEN + 1])
{
    buf_t msg = BUF_INIT;
    buf_printf(&msg, "PUT\n%s/%s\n%lld\n%s\n%lld\n%s", id, name, size, ctype, expiry, bare);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg.data,
                  msg.len, mac, &maclen) != NULL && maclen == 32;
    buf_free(&msg);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < 32; i++)
        snprintf(sig + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

static void hex_append(buf_t *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        buf_printf(out, "%02x", *p);
}

void upslot_token_make(buf_t *out, long long expiry, long long size, const char *ctype,
                       const char *bare, const char *sig)
{
    buf_printf(out, "Bearer %lld.%lld.", expiry, size);
    hex_append(out, ctype);
    buf_append_str(out, ".");
    hex_append(out, bare);
    buf_printf(out, ".%s", sig);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes lower-case hex from p up to '.' into out (at most max bytes, NUL-terminated, no
 * NUL byte inside); returns the end or NULL. */
static const char *hex_field(const char *p, char *out, size_t max)
{
    size_t n = 0;
    while (*p && *p != '.') {
        int hi = hexval(p[0]), lo = p[1] ? hexval(p[1]) : -1;
        if (hi < 0 || lo < 0 || n >= max || (hi == 0 && lo == 0))
            return NULL;
        out[n++] = (char)(hi << 4 | lo);
        p += 2;
    }
    out[n] = '\0';
    return p;
}

/* A decimal of 1..18 digits (no sign, no leading zero: one spelling per value) up to '.';
 * returns the end or NULL. */
static const char *dec_field(const char *p, long long *v)
{
    long long x = 0;
    if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
        return NULL;
    int n = 0;
    while (*p >= '0' && *p <= '9') {
        if (++n > 18)
            return NULL;
        x = x * 10 + (*p++ - '0');
    }
    if (n == 0)
        return NULL;
    *v = x;
    return p;
}

int upslot_token_parse(const char *value, upslot_token_t *t)
{
    memset(t, 0, sizeof *t);
    if (strncmp(value, "Bearer ", 7) != 0 || strlen(value) > UPSLOT_TOKEN_MAX)
        return -1;
    const char *p = value + 7;
    if (!(p = dec_field(p, &t->expiry)) || *p++ != '.')
        return -1;
    if (!(p = dec_field(p, &t->size)) || *p++ != '.')
        return -1;
    if (!(p = hex_field(p, t->ctype, UPSLOT_CTYPE_MAX)) || *p++ != '.')
        return -1;
    if (!(p = hex_field(p, t->bare, JID_MAX)) || *p++ != '.' || !t->bare[0])
        return -1;
    size_t n = 0;
    while (hexval(*p) >= 0 && n < UPSLOT_SIG_LEN)
        t->sig[n++] = *p++;
    t->sig[n] = '\0';
    if (n != UPSLOT_SIG_LEN || *p != '\0')
        return -1;
    if (t->ctype[0] && !upslot_ctype_ok(t->ctype))
        return -1;
    return 0;
}

int upslot_verify(const char *secret, const char *id, const char *name,
                  const upslot_token_t *t)
{
    char want[UPSLOT_SIG_LEN + 1];
    if (upslot_sign(secret, id, name, t->size, t->ctype, t->expiry, t->bare, want) < 0)
        return 0;
    return ct_equal(want, t->sig, UPSLOT_SIG_LEN);
}

int upslot_path_parse(const char *path, const char *prefix, upslot_path_t *p)
{
    memset(p, 0, sizeof *p);
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0 || path[plen] != '/')
        return -2;
    const char *s = path + plen + 1;
    size_t i = 0;
    for (; i < UPSLOT_ID_LEN; i++) {
        if (hexval(s[i]) < 0)
            return -1;
        p->id[i] = s[i];
    }
    p->id[i] = '\0';
    if (s[i] != '/')
        return -1;
    const char *name = s + i + 1;
    if (strlen(name) > UPSLOT_NAME_MAX || !upslot_name_ok(name))
        return -1;
    strcpy(p->name, name);
    return 0;
}

void upslot_url_escape(buf_t *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~')
            buf_append(out, p, 1);
        else
            buf_printf(out, "%%%02X", *p);
    }
}

int upslot_url_path(const char *url, char *out, size_t n)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else
        return -1;
    const char *slash = strchr(p, '/');
    if (slash == p)
        return -1; /* no host */
    const char *path = slash ? slash : "";
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    if (len >= n || strpbrk(path, "?#%"))
        return -1;
    memcpy(out, path, len);
    out[len] = '\0';
    return 0;
}

int upslot_range_parse(const char *h, long long size, long long *off, long long *len)
{
    if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    long long a = -1, b = -1;
    char *end;
    if (*p == '-') {
        if (!p[1] || strspn(p + 1, "0123456789") != strlen(p + 1) || strlen(p + 1) > 18)
            return 0;
        long long n = strtoll(p + 1, &end, 10);
        if (n == 0 || size == 0)
            return -1;
        if (n > size)
            n = size;
        *off = size - n;
        *len = n;
        return 1;
    }
    if (!(*p >= '0' && *p <= '9'))
        return 0;
    errno = 0;
    a = strtoll(p, &end, 10);
    if (errno || *end != '-')
        return 0;
    p = end + 1;
    if (*p) {
        if (strspn(p, "0123456789") != strlen(p) || strlen(p) > 18)
            return 0;
        b = strtoll(p, &end, 10);
        if (b < a)
            return 0; /* invalid: ignored (RFC 9110 14.2) */
    }
    if (a >= size)
        return -1;
    if (b < 0 || b >= size)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

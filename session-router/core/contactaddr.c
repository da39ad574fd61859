#include "contactaddr.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *const contactaddr_kinds[CONTACTADDR_KINDS] = {
    "abuse", "admin", "feedback", "sales", "security", "status", "support",
};

#define NS_XDATA "jabber:x:data"

static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

/* RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'
 * and something after it; all of it printable ASCII without spaces. */
static const char *uri_problem(const char *s, size_t n)
{
    if (n == 0)
        return "an empty address";
    if (n > CONTACTADDR_MAX_URI)
        return "an address longer than 1024 bytes";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return "an address with a space, a control or a non-ASCII character "
                   "(percent-encode it)";
    if (!isalpha((unsigned char)s[0]))
        return "an address that is not a URI (mailto:, xmpp:, https:, ...)";
    size_t i = 1;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= n || s[i] != ':')
        return "an address that is not a URI (mailto:, xmpp:, https:, ...)";
    if (i + 1 == n)
        return "a URI with nothing after its scheme";
    return NULL;
}

static int kind_of(const char *s, size_t n)
{
    for (int k = 0; k < CONTACTADDR_KINDS; k++)
        if (strlen(contactaddr_kinds[k]) == n && strncmp(contactaddr_kinds[k], s, n) == 0)
            return k;
    return -1;
}

__attribute__((format(printf, 4, 5))) static int fail(contactaddr_t *out, char *err,
                                                       size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    contactaddr_free(out);
    return -1;
}

int contactaddr_parse(const char *text, contactaddr_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *gs = p, *ge = end;
        p = *end ? end + 1 : end;
        trim(&gs, &ge);
        if (gs == ge)
            continue; /* "a=x;;b=y" or a trailing ';' */
        const char *eq = memchr(gs, '=', (size_t)(ge - gs));
        if (!eq)
            return fail(out, err, errlen, "'%.*s' is not KIND=URI[,URI...]", (int)(ge - gs), gs);
        const char *ks = gs, *ke = eq;
        trim(&ks, &ke);
        int k = kind_of(ks, (size_t)(ke - ks));
        if (k < 0)
            return fail(out, err, errlen,
                        "unknown kind '%.*s' (abuse, admin, feedback, sales, security, "
                        "status or support)",
                        (int)(ke - ks), ks);
        if (out->n[k])
            return fail(out, err, errlen, "kind '%.*s' is given twice (list its addresses "
                        "in one group, separated by ',')", (int)(ke - ks), ks);
        const char *u = eq + 1;
        for (;;) {
            const char *ue = memchr(u, ',', (size_t)(ge - u));
            if (!ue)
                ue = ge;
            const char *us = u, *uend = ue;
            trim(&us, &uend);
            const char *why = uri_problem(us, (size_t)(uend - us));
            if (why)
                return fail(out, err, errlen, "kind '%.*s' has %s", (int)(ke - ks), ks, why);
            if (out->n[k] == CONTACTADDR_MAX_URIS)
                return fail(out, err, errlen, "kind '%.*s' has more than %d addresses",
                            (int)(ke - ks), ks, CONTACTADDR_MAX_URIS);
            out->uris[k] = xrealloc(out->uris[k], (out->n[k] + 1) * sizeof *out->uris[k]);
            out->uris[k][out->n[k]++] = xstrndup(us, (size_t)(uend - us));
            if (ue == ge)
                break;
            u = ue + 1;
        }
    }
    return 0;
}

size_t contactaddr_count(const contactaddr_t *c)
{
    size_t n = 0;
    for (int k = 0; k < CONTACTADDR_KINDS; k++)
        n += c->n[k];
    return n;
}

static void add_value(xml_node_t *field, const char *v)
{
    xml_node_add_text(xml_node_new_child(field, "value", NULL), v, strlen(v));
}

xml_node_t *contactaddr_form(const contactaddr_t *c)
{
    if (!contactaddr_count(c))
        return NULL;
    /* XEP-0128 section 2 / XEP-0068: a result form whose first field is the hidden
     * FORM_TYPE; XEP-0115 5.4 refuses a disco#info whose FORM_TYPE is not hidden. */
    xml_node_t *x = xml_node_new("x", NS_XDATA);
    xml_node_set_attr(x, "type", "result");
    xml_node_t *ft = xml_node_new_child(x, "field", NULL);
    xml_node_set_attr(ft, "var", "FORM_TYPE");
    xml_node_set_attr(ft, "type", "hidden");
    add_value(ft, NS_SERVERINFO);
    for (int k = 0; k < CONTACTADDR_KINDS; k++) {
        if (!c->n[k])
            continue;
        char var[32];
        snprintf(var, sizeof var, "%s-addresses", contactaddr_kinds[k]);
        xml_node_t *f = xml_node_new_child(x, "field", NULL);
        xml_node_set_attr(f, "var", var);
        xml_node_set_attr(f, "type", "list-multi");
        for (size_t i = 0; i < c->n[k]; i++)
            add_value(f, c->uris[k][i]);
    }
    return x;
}

void contactaddr_free(contactaddr_t *c)
{
    for (int k = 0; k < CONTACTADDR_KINDS; k++) {
        for (size_t i = 0; i < c->n[k]; i++)
            free(c->uris[k][i]);
        free(c->uris[k]);
    }
    memset(c, 0, sizeof *c);
}

#include "tls.h"

#include <errno.h>
#include <idna.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "log.h"
#include "util.h"

/* The policy (tls.h). TLS 1.2: ECDHE only, AEAD only, ECDSA before RSA, AES-128 first
 * (fast everywhere), ChaCha20 for clients without AES hardware (SSL_OP_PRIORITIZE_CHACHA). */
#define TLS_CIPHERS_12                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_SUITES_13 "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
/* No SHA-1 and no SHA-224 signatures; RSA-PSS before PKCS#1 v1.5 (TLS 1.3 needs PSS). */
#define TLS_SIGALGS                                                                                \
    "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:"                                                      \
    "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"                                 \
    "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"                                    \
    "RSA+SHA256:RSA+SHA384:RSA+SHA512"

#define TLS_MAX_PAIRS 4             /* more than ECDSA + RSA is a configuration mistake */
#define TLS_MAX_FILE (1024 * 1024)  /* a PEM file bigger than this is not a certificate */
#define TLS_PATH_MAX 1024

/* OpenSSL's most recent error reason, or a fallback that still reads well. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "no details from OpenSSL";
}

/* XEP-0368 section 3: a client on the direct TLS port may offer ALPN "xmpp-client"; we
 * accept it, and a client that offers no ALPN or other protocols is served all the same. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* "xmpp-server" for servers on s2s_tls_listen (XEP-0368 3 too). */
    static const unsigned char want[] = "\x0bxmpp-client\x0bxmpp-server";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, want, sizeof want - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Never ask for a passphrase on a terminal: an encrypted key simply fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

/* Reads a whole file into a memory BIO (so errno is ours to report, and a file replaced
 * while we read it is read whole or not at all). NULL with err set on failure. */
static BIO *read_file(const char *key, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "key '%s': cannot read '%s': %s", key, path, strerror(errno));
        return NULL;
    }
    char *data = xmalloc(TLS_MAX_FILE);
    size_t n = fread(data, 1, TLS_MAX_FILE, f);
    int bad = ferror(f), saved = errno;
    fclose(f);
    BIO *bio = NULL;
    if (bad)
        snprintf(err, errlen, "key '%s': cannot read '%s': %s", key, path, strerror(saved));
    else if (n == TLS_MAX_FILE)
        snprintf(err, errlen, "key '%s': '%s' is larger than 1 MiB", key, path);
    else if (n == 0)
        snprintf(err, errlen, "key '%s': '%s' is empty", key, path);
    else if (!(bio = BIO_new(BIO_s_mem())) || BIO_write(bio, data, (int)n) != (int)n) {
        snprintf(err, errlen, "key '%s': '%s': out of memory", key, path);
        BIO_free(bio);
        bio = NULL;
    }
    OPENSSL_cleanse(data, n); /* it may have been a private key */
    free(data);
    return bio;
}

/* "RSA" or "ECDSA" for the key types we serve, NULL for any other. */
static const char *key_kind(EVP_PKEY *pkey)
{
    if (EVP_PKEY_is_a(pkey, "RSA"))
        return "RSA";
    if (EVP_PKEY_is_a(pkey, "EC"))
        return "ECDSA";
    return NULL;
}

/* Loads one certificate chain and its key into ctx. kinds_seen: the key types loaded so far
 * (one certificate per type, or the second would silently replace the first). */
static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, const char **kinds_seen,
                     int nseen, const char **kind_out, char *err, size_t errlen)
{
    int rc = -1;
    X509 *leaf = NULL;
    EVP_PKEY *pkey = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *cb = NULL, *kb = NULL;

    ERR_clear_error();
    if (!chain || !(cb = read_file("tls_cert", cert, err, errlen)))
        goto out;
    if (!(leaf = PEM_read_bio_X509_AUX(cb, NULL, no_passphrase, NULL))) {
        snprintf(err, errlen, "key 'tls_cert': '%s' holds no PEM certificate: %s", cert,
                 ssl_reason());
        goto out;
    }
    for (;;) {
        X509 *ca = PEM_read_bio_X509(cb, NULL, no_passphrase, NULL);
        if (!ca)
            break;
        if (!sk_X509_push(chain, ca)) {
            X509_free(ca);
            snprintf(err, errlen, "key 'tls_cert': '%s': out of memory", cert);
            goto out;
        }
    }
    /* The chain ends at the end of the file; anything else is a broken PEM block. A file
     * that holds the key too (tls_key empty) has it after the chain: that is fine. */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        snprintf(err, errlen, "key 'tls_cert': '%s': a bad PEM certificate after the first: %s",
                 cert, ssl_reason());
        goto out;
    }
    ERR_clear_error();

    if (!(kb = read_file("tls_key", key, err, errlen)))
        goto out;
    if (!(pkey = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL))) {
        snprintf(err, errlen,
                 "key 'tls_key': '%s' holds no usable PEM private key (encrypted keys are not "
                 "supported): %s",
                 key, ssl_reason());
        goto out;
    }
    const char *kind = key_kind(pkey);
    if (!kind) {
        snprintf(err, errlen, "key 'tls_key': '%s' is neither an RSA nor an ECDSA key", key);
        goto out;
    }
    if (X509_check_private_key(leaf, pkey) != 1) {
        snprintf(err, errlen, "key 'tls_key': '%s' does not match the certificate in tls_cert '%s'",
                 key, cert);
        goto out;
    }
    for (int i = 0; i < nseen; i++) {
        if (strcmp(kinds_seen[i], kind) == 0) {
            snprintf(err, errlen,
                     "key 'tls_cert': '%s' is a second %s certificate; give at most one ECDSA "
                     "and one RSA certificate",
                     cert, kind);
            goto out;
        }
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
        log_warn("tls_cert: the certificate in '%s' has expired", cert);
    ERR_clear_error();
    if (SSL_CTX_use_cert_and_key(ctx, leaf, pkey, chain, 0) != 1) {
        snprintf(err, errlen, "key 'tls_cert': '%s' with tls_key '%s' refused by OpenSSL: %s",
                 cert, key, ssl_reason());
        goto out;
    }
    *kind_out = kind;
    rc = 0;
out:
    BIO_free(cb);
    BIO_free(kb);
    X509_free(leaf);
    EVP_PKEY_free(pkey);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

/* Splits a comma-separated list of paths (spaces around each trimmed) into out; returns the
 * count, or -1 when an entry is empty, too long or there are too many. */
static int split_list(const char *list, char out[][TLS_PATH_MAX], int max)
{
    int n = 0;
    size_t len;
    const char *cur = list, *p;
    while ((p = config_list_next(&cur, &len))) {
        if (len == 0 || len >= TLS_PATH_MAX || n == max)
            return -1;
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        n++;
    }
    return n;
}

static SSL_CTX *ctx_build(int server, const char *certs, const char *keys, char *err,
                          size_t errlen)
{
    static char certv[TLS_MAX_PAIRS][TLS_PATH_MAX], keyv[TLS_MAX_PAIRS][TLS_PATH_MAX];
    err[0] = '\0';
    int nc = split_list(certs, certv, TLS_MAX_PAIRS);
    if (nc < 0) {
        snprintf(err, errlen,
                 "key 'tls_cert': '%s' is not a comma-separated list of 1..%d file names", certs,
                 TLS_MAX_PAIRS);
        return NULL;
    }
    int nk = nc;
    if (*keys) {
        nk = split_list(keys, keyv, TLS_MAX_PAIRS);
        if (nk < 0) {
            snprintf(err, errlen,
                     "key 'tls_key': '%s' is not a comma-separated list of 1..%d file names",
                     keys, TLS_MAX_PAIRS);
            return NULL;
        }
        if (nk != nc) {
            snprintf(err, errlen, "key 'tls_key': %d file(s) for %d in tls_cert; they pair by "
                                  "position", nk, nc);
            return NULL;
        }
    } else {
        memcpy(keyv, certv, sizeof keyv);
    }

    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: cannot create a context: %s", ssl_reason());
        return NULL;
    }
    /* Each call below only fails on a typo in the policy strings above: still checked, so
     * a build against an OpenSSL that lacks one of them fails loudly, not open. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS_SUITES_13) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
        SSL_CTX_set1_sigalgs_list(ctx, TLS_SIGALGS) != 1) {
        snprintf(err, errlen, "TLS: the built-in policy was refused by OpenSSL: %s", ssl_reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_security_level(ctx, 2); /* RSA and DH >= 2048 bits, ECC >= 224 bits */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    /* Small at rest: OpenSSL frees its record buffers while a connection is idle. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* One read() takes whatever the socket holds, not a record header and then its body:
     * a client writing one stanza per record otherwise costs two reads per stanza and a
     * third to learn there is no more (bench/README.md, "Where the time goes"). Bytes
     * OpenSSL read ahead raise no event: client.c asks SSL_has_pending. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (server)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);

    const char *kinds[TLS_MAX_PAIRS];
    for (int i = 0; i < nc; i++) {
        if (load_pair(ctx, certv[i], keyv[i], kinds, i, &kinds[i], err, errlen) < 0) {
            SSL_CTX_free(ctx);
            ERR_clear_error();
            return NULL;
        }
    }
    for (int i = 0; i < nc && server; i++)
        log_info("TLS: %s certificate from '%s', key '%s'", kinds[i], certv[i], keyv[i]);
    return ctx;
}

SSL_CTX *tls_ctx_new(const char *certs, const char *keys, char *err, size_t errlen)
{
    return ctx_build(1, certs, keys, err, errlen);
}

SSL_CTX *tls_client_ctx_new(const char *certs, const char *keys, char *err, size_t errlen)
{
    return ctx_build(0, certs, keys, err, errlen);
}

static int reload(int server, SSL_CTX **ctx_p, const char *certs, const char *keys)
{
    char err[2 * TLS_PATH_MAX + 256];
    SSL_CTX *ctx = ctx_build(server, certs, keys, err, sizeof err);
    if (!ctx) {
        log_error("TLS reload failed, still %s the previous certificates: %s",
                  server ? "serving" : "presenting (outbound)", err);
        return -1;
    }
    tls_ctx_free(ctx_p);
    *ctx_p = ctx;
    log_info("TLS: certificates reloaded; new %sconnections use them", server ? "" : "outbound ");
    return 0;
}

int tls_reload(SSL_CTX **ctx_p, const char *certs, const char *keys)
{
    return reload(1, ctx_p, certs, keys);
}

int tls_reload_client(SSL_CTX **ctx_p, const char *certs, const char *keys)
{
    return reload(0, ctx_p, certs, keys);
}

void tls_ctx_free(SSL_CTX **ctx_p)
{
    if (!*ctx_p)
        return;
    SSL_CTX_free(*ctx_p);
    *ctx_p = NULL;
}

/* RFC 9266 section 2: the label; 32 bytes; no context (use_context 0, which on TLS 1.2
 * differs from an empty one). */
#define TLS_CB_EXPORTER_LABEL "EXPORTER-Channel-Binding"
#define TLS_CB_EXPORTER_LEN 32

void tls_channel_bindings(SSL *ssl, scram_cb_t *cb)
{
    memset(cb, 0, sizeof *cb);
    if (!ssl || !SSL_is_init_finished(ssl))
        return;
    /* RFC 9266 section 3: on TLS 1.2 the exporter is only unique to the connection with
     * the extended master secret; without it tls-exporter is not offered at all. */
    int version = SSL_version(ssl);
    if (version == TLS1_3_VERSION ||
        (version == TLS1_2_VERSION && SSL_get_extms_support(ssl) == 1)) {
        if (SSL_export_keying_material(ssl, cb->data[SCRAM_CB_TLS_EXPORTER],
                                       TLS_CB_EXPORTER_LEN, TLS_CB_EXPORTER_LABEL,
                                       sizeof TLS_CB_EXPORTER_LABEL - 1, NULL, 0, 0) == 1)
            cb->len[SCRAM_CB_TLS_EXPORTER] = TLS_CB_EXPORTER_LEN;
        else
            ERR_clear_error();
    }
    /* RFC 5929 section 4.1. With an ECDSA and an RSA certificate loaded, OpenSSL has made
     * the one it served the current one by the end of the handshake. */
    X509 *cert = SSL_get_certificate(ssl);
    int md_nid = NID_undef;
    if (!cert || X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) != 1 ||
        md_nid == NID_undef) {
        ERR_clear_error();
        return;
    }
    if (md_nid == NID_md5 || md_nid == NID_sha1)
        md_nid = NID_sha256;
    const EVP_MD *md = EVP_get_digestbynid(md_nid);
    unsigned int n = 0;
    if (md && (size_t)EVP_MD_get_size(md) <= SCRAM_CB_MAX_DATA &&
        X509_digest(cert, md, cb->data[SCRAM_CB_TLS_SERVER_END_POINT], &n) == 1 && n > 0)
        cb->len[SCRAM_CB_TLS_SERVER_END_POINT] = n;
    else
        ERR_clear_error();
}

/* ---- peer certificates of server-to-server streams (s2s.c) ---- */

int tls_cert_names(X509 *cert, const char *domain)
{
    /* RFC 6125 6.4: DNS-IDs only (never the subject's CN: RFC 7590 and XEP-0178 follow
     * it), a wildcard only as the complete left-most label. A DNS-ID is in A-labels
     * (6.4.2): an internationalised domain (prepared, in U-labels) is compared in that
     * form. */
    char *alabel = NULL;
    const char *dns = domain;
    for (const char *p = domain; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            dns = idna_to_ascii_8z(domain, &alabel, 0) == IDNA_SUCCESS ? alabel : NULL;
            break;
        }
    }
    int dns_ok = dns && X509_check_host(cert, dns, strlen(dns),
                                        X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                            X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                        NULL) == 1;
    free(alabel);
    if (dns_ok)
        return 1;
    ERR_clear_error();
    /* RFC 6120 13.7.1.4: an XmppAddr (id-on-xmppAddr otherName, UTF8String) that is the
     * domain itself. */
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_OTHERNAME || OBJ_obj2nid(g->d.otherName->type_id) != NID_XmppAddr)
            continue;
        const ASN1_TYPE *v = g->d.otherName->value;
        if (!v || v->type != V_ASN1_UTF8STRING)
            continue;
        const unsigned char *s = ASN1_STRING_get0_data(v->value.utf8string);
        int len = ASN1_STRING_length(v->value.utf8string);
        if (len <= 0 || len > JID_PART_MAX || memchr(s, '\0', (size_t)len))
            continue;
        char raw[JID_PART_MAX + 1], dom[JID_PART_MAX + 1];
        memcpy(raw, s, (size_t)len);
        raw[len] = '\0';
        found = jid_prep_domain(dom, raw) == 0 && strcmp(dom, domain) == 0;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

int tls_peer_verify(SSL *ssl, X509_STORE *store, const char *domain, char *why, size_t n)
{
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    if (!peer) {
        snprintf(why, n, "no certificate");
        return 0;
    }
    X509_STORE_CTX *xs = X509_STORE_CTX_new();
    int ok = xs && X509_STORE_CTX_init(xs, store, peer, SSL_get_peer_cert_chain(ssl)) == 1 &&
             X509_verify_cert(xs) == 1;
    if (!ok)
        snprintf(why, n, "certificate not trusted: %s",
                 xs ? X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs))
                    : "out of memory");
    X509_STORE_CTX_free(xs);
    ERR_clear_error();
    if (ok && !tls_cert_names(peer, domain)) {
        snprintf(why, n, "the certificate does not name %s", domain);
        ok = 0;
    }
    return ok;
}

/* tls: the frontend's TLS policy and certificates (README.md, "TLS").
 * TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE key exchange and AEAD ciphers (AES-GCM,
 * ChaCha20-Poly1305) only, authenticated by ECDSA or RSA; TLS 1.3 with its AEAD suites;
 * groups X25519, P-256, P-384; no compression, no renegotiation; ALPN "xmpp-client".
 * One ECDSA and one RSA certificate can be served side by side: OpenSSL picks the one
 * that fits the client's cipher suites and signature algorithms. */
#ifndef C2S_TLS_H
#define C2S_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "scram.h"

/* Builds a server context with the policy above and the certificates of `certs` and
 * `keys`, comma-separated lists of PEM files paired by position (a certificate chain
 * file and its private key; keys may be empty when each cert file holds its key too).
 * Returns the new context (the caller owns its reference), or NULL with a message in err
 * that names the config key (tls_cert or tls_key) and the file. */
SSL_CTX *tls_ctx_new(const char *certs, const char *keys, char *err, size_t errlen);

/* The same policy and certificates for the client side of a connection (outbound
 * server-to-server streams, s2s_out.c): the certificates are presented as client
 * certificates, so that the peer can authenticate us by SASL EXTERNAL (XEP-0178). */
SSL_CTX *tls_client_ctx_new(const char *certs, const char *keys, char *err, size_t errlen);

/* The SIGHUP reload: builds a fresh context from the same lists; on success puts it in
 * *ctx_p and drops the caller's reference to the old one (connections that use the old
 * context hold their own references and keep it until they close), returns 0. On failure
 * logs an error naming the key and file, leaves *ctx_p as it was and returns -1. */
int tls_reload(SSL_CTX **ctx_p, const char *certs, const char *keys);
/* The same for a client context (tls_client_ctx_new). */
int tls_reload_client(SSL_CTX **ctx_p, const char *certs, const char *keys);

/* The channel bindings of an established TLS connection, for SCRAM-*-PLUS (cb filled,
 * len 0 for each type not available; ssl NULL or a handshake not finished: none):
 * - tls-exporter (RFC 9266): 32 bytes of SSL_export_keying_material with the label
 *   "EXPORTER-Channel-Binding" and no context; on TLS 1.3, and on TLS 1.2 only when the
 *   extended master secret (RFC 7627) was negotiated (RFC 9266 section 3);
 * - tls-server-end-point (RFC 5929 section 4.1): the hash of our certificate (the one
 *   served on this connection, DER) with the hash of its signature algorithm, SHA-256 in
 *   place of MD5 or SHA-1; not available when that algorithm has no single hash. */
void tls_channel_bindings(SSL *ssl, scram_cb_t *cb);

/* The certificate of a server-to-server peer (RFC 6125, RFC 7590, XEP-0178): 1 when the
 * certificate `ssl`'s peer presented verifies against `store` (its chain, its dates) and
 * names `domain` by tls_cert_names; else 0 with the reason in why. */
int tls_peer_verify(SSL *ssl, X509_STORE *store, const char *domain, char *why, size_t n);
/* 1 when cert names `domain` (prepared): a DNS-ID subjectAltName (RFC 6125 6.4: in A-labels
 * for an internationalised domain, never the
 * subject's CN; a wildcard only as the whole left-most label), or an XmppAddr otherName
 * (id-on-xmppAddr, RFC 6120 13.7.1.4) equal to it. */
int tls_cert_names(X509 *cert, const char *domain);

/* Drops the caller's reference and sets *ctx_p to NULL; NULL is accepted. */
void tls_ctx_free(SSL_CTX **ctx_p);

#endif

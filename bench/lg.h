/* loadgen: a single-threaded epoll XMPP client load generator. This header is the interface
 * between the connection engine (lg_conn.c), SCRAM (lg_scram.c), measurements
 * (lg_stats.c) and the scenarios (loadgen.c). */
#ifndef BENCH_LG_H
#define BENCH_LG_H

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- settings shared by every connection (filled from the command line) ---- */

typedef enum { SASL_AUTO, SASL_SCRAM_SHA256, SASL_SCRAM_SHA1, SASL_PLAIN } lg_sasl_t;

typedef struct {
    char host[64]; /* server address (numeric IPv4) */
    int ports[8];  /* one port per frontend; clients spread round-robin */
    int nports;
    int nsrc;      /* source addresses 127.0.0.src_first .. +nsrc-1 (0/1 and src_first 1: let
                      the kernel pick) */
    int src_first; /* last byte of the first source address (1) */
    char domain[256];
    char user_prefix[64]; /* accounts are PREFIX<user_first> .. PREFIX<user_first + n - 1> */
    uint32_t user_first;  /* account number of slot 0 (0): several generators, one account
                             range each */
    char password[128];
    int starttls; /* 1: STARTTLS before SASL; 0: plaintext stream */
    lg_sasl_t sasl;
    int roster;          /* send a roster get before initial presence (interested resource) */
    int login_timeout_s; /* a login not finished by then counts as failed */
    int sm;              /* XEP-0198: <enable resume='true'/> after bind, <a/> to every <r/> */
    int write_each;      /* after login, each lg_send goes out at once in its own write/SSL_write
                            (one TLS record per stanza, as interactive clients write); 0: what a
                            connection queued in one loop pass goes out in one write */
    const char *disco_info; /* NULL, or the <query/> answering the server's disco#info gets
                               (XEP-0115 queries for the entity capabilities we announce) */
    /* XMPP over WebSocket (RFC 7395): clients whose index is below ws_share * N connect to
     * ws_ports instead (HTTP upgrade, then one element per masked text frame, <open/>
     * framing); wss: TLS from the first byte. STARTTLS is never used on them. */
    int ws_ports[8];
    int nws_ports;
    double ws_share;
    int wss;
    char ws_path[128];
} lg_config_t;

extern lg_config_t lg_cfg;

/* ---- connections ---- */

typedef enum {
    CS_FREE = 0,   /* not started, or closed */
    CS_CONNECTING, /* TCP connect in progress */
    CS_STREAM1,    /* stream header sent, waiting for the first features */
    CS_STARTTLS,   /* <starttls/> sent, waiting for <proceed/> */
    CS_HANDSHAKE,  /* TLS handshake */
    CS_STREAM2,    /* waiting for the SASL features */
    CS_AUTH,       /* SASL exchange */
    CS_STREAM3,    /* after SASL success, waiting for the bind features */
    CS_BIND,       /* bind iq sent */
    CS_PING,       /* initial presence and ping sent, waiting for the ping result */
    CS_READY,      /* logged in: the scenario owns it */
    CS_RESUME,     /* XEP-0198 <resume/> sent instead of bind, waiting for <resumed/> */
    CS_WS_UPGRADE, /* WebSocket: HTTP upgrade request sent, waiting for 101 */
} lg_state_t;

typedef struct scram_client scram_client_t;

/* One client. Kept small on purpose: at 100,000 connections every byte counts x100,000, and
 * buffers exist only while they hold data. */
typedef struct lg_conn {
    int fd;
    uint8_t state;
    uint8_t fail_state;    /* the state a failed connection was in (CS_READY: lost after login) */
    uint8_t in_stream : 1; /* the server's stream header has been seen */
    uint8_t want_out : 1;  /* EPOLLOUT is registered */
    uint8_t dirty : 1;     /* on the flush list */
    uint8_t failed : 1;
    uint8_t roster_result : 1; /* the roster get was answered with a result */
    uint8_t hs_want_write : 1;
    uint8_t io_want_write : 1; /* SSL_read or SSL_write needs the socket writable */
    uint8_t roster_wait : 1;   /* the roster get is not answered yet */
    uint8_t ping_ok : 1;       /* the ping is answered */
    uint8_t sm_on : 1;         /* XEP-0198 enabled (or resumed) on this stream */
    uint8_t resuming : 1;      /* this connection resumes the slot's earlier session */
    uint8_t ws : 1;            /* XMPP over WebSocket (RFC 7395) */
    SSL *ssl;
    char *in; /* bytes of an incomplete stanza, NULL when none */
    uint32_t in_len, in_cap;
    char *out; /* bytes not yet written, NULL when none */
    uint32_t out_len, out_cap;
    scram_client_t *scram; /* only during the SASL exchange */
    uint64_t t_start;      /* connect time (us) */
    uint32_t idx;          /* account number: PREFIX<idx> */
    int32_t inflight;      /* scenario use: messages in flight from this client */
    uint32_t next_dirty;   /* flush list link (index + 1, 0 = end) */
    uint32_t counter;      /* scenario use */
    uint16_t roster_both;  /* roster items with subscription 'both' at login */
    char *sm_id;           /* XEP-0198 resumption id, NULL when none */
    uint32_t sm_h;         /* stanzas received since <enabled/> (mod 2^32) */
    uint32_t sm_sent;      /* stanzas sent by the scenario since <enabled/> */
    uint64_t t_resume;     /* when <resume/> was sent (us) */
    char *wsin;            /* WebSocket: bytes of an incomplete frame (or HTTP response head) */
    uint32_t wsin_len, wsin_cap;
} lg_conn_t;

/* What the scenario hears from the engine. */
typedef struct {
    void (*ready)(lg_conn_t *c);                   /* login finished (ping answered) */
    void (*failed)(lg_conn_t *c, const char *why); /* login failed or ready conn lost */
    void (*stanza)(lg_conn_t *c, const char *name, const char *st, size_t len); /* READY only */
} lg_handlers_t;

/* XEP-0198 (lg_cfg.sm): a stanza the scenario sent; every 5th is followed by an <r/>, so
 * both ends acknowledge (a client's usual window). */
void lg_sm_sent(lg_conn_t *c);

/* Sets up TLS and epoll for `n` connection slots. Returns 0 or -1. */
int lg_init(uint32_t n, const lg_handlers_t *h);
void lg_shutdown(void);
lg_conn_t *lg_conn(uint32_t idx);
/* Starts the login of account `idx` on slot `idx`. Returns 0, or -1 when the socket could not
 * be opened (then `failed` has been called). */
int lg_start(uint32_t idx);
/* Reconnects slot `idx` and resumes its XEP-0198 session (<resume/> instead of bind); `ready`
 * is called on <resumed/>, with c->resuming set. Returns 0 or -1 as lg_start. */
int lg_resume(uint32_t idx);
/* Queues bytes for the server; they go out at the end of the loop iteration. */
void lg_send(lg_conn_t *c, const char *data, size_t len);
/* Closes a connection now (no callback). */
void lg_close(lg_conn_t *c);
/* Runs the loop until done() returns nonzero or `timeout_us` passes; tick() (may be NULL)
 * runs at least every `tick_us`. Returns 0 when done, -1 on timeout. */
int lg_run(int (*done)(void), void (*tick)(void), uint64_t tick_us, uint64_t timeout_us);
/* Counts of connections by state. */
uint32_t lg_count_state(lg_state_t st);

/* ---- small helpers ---- */

uint64_t now_us(void);
/* Copies the value of attribute `name` of the element's start tag into out. Returns the
 * length, or -1 when absent or too long. */
int xml_attr(const char *st, size_t len, const char *name, char *out, size_t outsz);
/* Finds `needle` within st[0..len). */
const char *mem_find(const char *st, size_t len, const char *needle);

/* ---- SCRAM client (RFC 5802 / RFC 7677) ---- */

/* A client exchange for `user`; md is EVP_sha1() or EVP_sha256(). */
scram_client_t *scram_client_new(const EVP_MD *md, const char *user);
void scram_client_free(scram_client_t **s_p);
/* The client-first-message. */
const char *scram_client_first(const scram_client_t *s);
/* From server-first-message (decoded) to client-final-message, written to out (NUL-ended).
 * Salted keys are cached per (hash, salt, iterations): with shared salts the generator pays
 * PBKDF2 once, not per login. Returns 0 or -1. */
int scram_client_final(scram_client_t *s, const char *server_first, size_t len,
                       const char *password, char *out, size_t outsz);
/* Checks the server-final-message "v=...". Returns 0 when the server proved itself. */
int scram_client_verify(const scram_client_t *s, const char *server_final, size_t len);
/* base64 with padding; out must hold 4*ceil(len/3)+1 bytes. Returns the length. */
size_t b64_encode(const unsigned char *in, size_t len, char *out);
/* Decodes base64 text; returns the length or -1. out must hold 3*len/4+3 bytes. */
int b64_decode(const char *in, size_t len, unsigned char *out);

/* ---- WebSocket framing (lg_ws.c), client side of RFC 6455 ---- */

#define WS_OP_CONT 0
#define WS_OP_TEXT 1
#define WS_OP_BINARY 2
#define WS_OP_CLOSE 8
#define WS_OP_PING 9
#define WS_OP_PONG 10
/* Largest frame header a client writes: 2 + 8 (length) + 4 (mask key). */
#define WS_HDR_MAX 14

/* The upgrade request for ws_path on `host` into out (NUL-ended); accept gets the
 * Sec-WebSocket-Accept value the server must answer with. Returns the length or -1. */
int ws_request(char *out, size_t outsz, const char *path, const char *host, char *accept,
               size_t acceptsz);
/* Checks a complete response head (up to and including the blank line): status 101, the
 * accept value, the xmpp subprotocol. Returns NULL when fine, else what is wrong. */
const char *ws_check_response(const char *head, size_t len, const char *accept);
/* Writes one final masked frame (header, then payload XORed with a fresh key) to dst, which
 * must hold n + WS_HDR_MAX bytes. Returns the bytes written. */
size_t ws_frame(char *dst, int opcode, const char *payload, size_t n);
/* A server frame at b[0..len): returns the header length and sets *opcode, *fin, *plen; 0
 * when more bytes are needed; -1 when the frame is invalid for a client to receive (masked,
 * reserved bits, a control frame over 125 bytes or fragmented, over 16 MiB). */
int ws_parse(const unsigned char *b, size_t len, int *opcode, int *fin, uint64_t *plen);

/* ---- measurements (lg_stats.c) ---- */

/* The server processes measured: CPU (user+sys) and RSS from /proc. */
typedef struct {
    pid_t pids[32];
    char names[32][32];
    int n;
} lg_procs_t;

/* Parses "1,2,3" into procs. Returns 0 or -1. */
int procs_from_list(lg_procs_t *p, const char *list);
/* Every process whose /proc/PID/comm equals one of the comma-separated names. */
int procs_from_names(lg_procs_t *p, const char *names);
/* Sum of user+sys CPU of all processes, in milliseconds (process-wide: all threads). */
double procs_cpu_ms(const lg_procs_t *p);
/* CPU (user+sys, all threads) of one process in ms; 0 when it is gone. */
double proc_cpu_ms(pid_t pid);
/* VmRSS of process i in KiB, or -1 when it is gone. */
long proc_rss_kib(pid_t pid);
/* Sum of VmRSS over all processes, KiB. */
long procs_rss_kib(const lg_procs_t *p);
/* CPU (user+sys) of this process in ms. */
double self_cpu_ms(void);

/* Latency histogram: 10 us buckets below 100 ms, 1 ms buckets up to 10 s. */
typedef struct {
    uint32_t *b;
    uint64_t n;
    uint64_t over; /* samples above 10 s */
    uint64_t max_us;
} lg_hist_t;

void hist_init(lg_hist_t *h);
void hist_free(lg_hist_t *h);
void hist_add(lg_hist_t *h, uint64_t us);
/* The q-quantile (0..1) in milliseconds; 0 when empty. */
double hist_ms(const lg_hist_t *h, double q);

#endif

/* session-router: holds session state and routes stanzas between the frontends' clients;
 * accounts live in Redis. The core (core/) is the link, the session table, routing and
 * storage; every feature is a module (modules/), registered here from one list. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "jid.h"
#include "log.h"
#include "authlimit.h"
#include "link.h"
#include "module.h"
#include "modules.h"
#include "privdrop.h"
#include "router.h"
#include "session.h"
#include "storage.h"
#include "util.h"

router_t rt;

/* Every feature of the router. Order matters only between hooks of equal priority and
 * between IQ handlers for the same element (the earlier is asked first). */
static module_t *const modules[] = {
    &mod_disco,
    &mod_ping,
    &mod_version,
    &mod_time,
    &mod_last,
    &mod_roster,
    &mod_presence,
    &mod_blocking,
    &mod_carbons,
    &mod_offline,
    &mod_vcard,
    &mod_private,
};

/* SIGHUP: the router holds no certificates and its settings are in use by pointer, so
 * there is nothing to reload; it must not die of the default action either. */
static void on_sighup(evloop_t *loop, int signo, void *ud)
{
    (void)loop;
    (void)signo;
    (void)ud;
    log_info("SIGHUP received: nothing to reload in the router, carrying on");
}

int main(int argc, char **argv)
{
    const char *cfg = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c') {
            cfg = optarg;
        } else {
            fprintf(stderr, "usage: session-router [-c CONFIG_FILE]\n");
            return 2;
        }
    }
    log_init("session-router");
    char err[1200];
    if (config_load(cfg, err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_level_parse(config_str("log_level"), &log_min_level);
    static char domain[JID_PART_MAX + 1];
    if (jid_prep_domain(domain, config_str("domain")) < 0)
        log_fatal("config: key 'domain': '%s' is not a valid domain", config_str("domain"));
    rt.domain = domain;
    rt.redis_prefix = config_str("redis_prefix");
    /* Frontend liveness (docs/PROTOCOL.md): silent this long means gone. */
    rt.frontend_timeout_ms = (uint64_t)config_int("frontend_timeout");
    random_bytes(&rt.epoch, sizeof rt.epoch);
    rt.started_ms = now_ms();

    rt.loop = evloop_new();
    rt.frontends = hmap_new();
    rt.by_conn = hmap_new();
    rt.by_jid = hmap_new();
    rt.users = hmap_new();
    evloop_on_signal(rt.loop, SIGHUP, on_sighup, NULL);
    rt.max_resources = config_int("max_resources");
    module_register(modules, sizeof modules / sizeof modules[0]);
    authlimit_open();
    link_open(config_str("router_bind"));
    storage_open(config_str("redis_host"), (int)config_int("redis_port"));
    /* router_bind is bound and the secret files are read: root is not needed any more
     * (README, "Privileges"); glibc switches libzmq's threads too. */
    if (privdrop_apply(config_str("user"), config_str("group"), err, sizeof err) < 0)
        log_fatal("config: %s", err);
    log_info("serving domain %s", rt.domain);

    evloop_run(rt.loop);

    log_info("shutting down");
    storage_close();
    authlimit_close();
    sessions_free_all();
    module_close_all();
    link_close();
    hmap_destroy(&rt.frontends);
    hmap_destroy(&rt.by_conn);
    hmap_destroy(&rt.by_jid);
    hmap_destroy(&rt.users);
    evloop_destroy(&rt.loop);
    config_free();
    return 0;
}

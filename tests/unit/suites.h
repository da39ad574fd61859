/* One Check suite per module; check_main.c runs them all. */
#ifndef TESTS_UNIT_SUITES_H
#define TESTS_UNIT_SUITES_H

#include <check.h>

Suite *make_xml_suite(void);
Suite *make_jid_suite(void);
Suite *make_scram_suite(void);
Suite *make_ipc_suite(void);
Suite *make_config_suite(void);
Suite *make_evloop_suite(void);
Suite *make_proxy_suite(void);
Suite *make_limits_suite(void);
Suite *make_curve_suite(void);
Suite *make_log_suite(void);
Suite *make_rules_suite(void);
Suite *make_router_suite(void);
Suite *make_metrics_suite(void);
Suite *make_adminproto_suite(void);
Suite *make_registration_suite(void);
Suite *make_capsver_suite(void);
Suite *make_pepcfg_suite(void);
Suite *make_turnrest_suite(void);
Suite *make_contactaddr_suite(void);
Suite *make_muccfg_suite(void);
Suite *make_mamq_suite(void);
Suite *make_upslot_suite(void);
Suite *make_s2s_resolve_suite(void);

#endif

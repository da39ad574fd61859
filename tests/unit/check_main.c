/* Runs every unit suite. CK_FORK=no runs them in-process (for gdb or valgrind);
 * the first argument, when given, runs only the suite of that name. */
#include <stdlib.h>
#include <string.h>

#include "suites.h"

int main(int argc, char **argv)
{
    Suite *(*makers[])(void) = {make_xml_suite,    make_jid_suite,    make_scram_suite,
                                make_ipc_suite,    make_config_suite, make_evloop_suite,
                                make_proxy_suite,  make_limits_suite, make_curve_suite,
                                make_log_suite,    make_rules_suite,  make_router_suite,
                                make_metrics_suite, make_adminproto_suite,
                                make_registration_suite, make_capsver_suite,
                                make_pepcfg_suite, make_muccfg_suite, make_mamq_suite,
                                make_turnrest_suite, make_contactaddr_suite,
                                make_upslot_suite, make_s2s_resolve_suite};
    SRunner *sr = NULL;
    for (size_t i = 0; i < sizeof makers / sizeof makers[0]; i++) {
        Suite *s = makers[i]();
        if (!sr)
            sr = srunner_create(s);
        else
            srunner_add_suite(sr, s);
    }
    srunner_run(sr, argc > 1 ? argv[1] : NULL, NULL, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

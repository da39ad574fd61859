/* CURVE keys in Z85 (common/curve.c): what the config accepts, and public-from-secret
 * agreeing with libzmq's own key pairs. */
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "curve.h"
#include "suites.h"

START_TEST(curve_parse_accepts_generated_keys)
{
    char pub[41], sec[41], derived[41];
    ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
    unsigned char raw[CURVE_KEY_LEN];
    ck_assert_int_eq(curve_key_parse(pub, raw), 0);
    ck_assert_int_eq(curve_key_parse(sec, NULL), 0);
    curve_public_of(sec, derived);
    ck_assert_str_eq(derived, pub);
    /* The decoded bytes encode back to the same text. */
    char again[41];
    ck_assert_ptr_nonnull(zmq_z85_encode(again, raw, sizeof raw));
    ck_assert_str_eq(again, pub);
}
END_TEST

START_TEST(curve_parse_refuses_malformed)
{
    char pub[41], sec[41];
    ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
    char bad[64];
    ck_assert_int_eq(curve_key_parse("", NULL), -1);
    memcpy(bad, pub, 39);
    bad[39] = '\0'; /* one short */
    ck_assert_int_eq(curve_key_parse(bad, NULL), -1);
    snprintf(bad, sizeof bad, "%sA", pub); /* one long */
    ck_assert_int_eq(curve_key_parse(bad, NULL), -1);
    snprintf(bad, sizeof bad, "%s", pub);
    bad[7] = '"'; /* not in the Z85 alphabet */
    ck_assert_int_eq(curve_key_parse(bad, NULL), -1);
    bad[7] = ' ';
    ck_assert_int_eq(curve_key_parse(bad, NULL), -1);
    bad[7] = '~';
    ck_assert_int_eq(curve_key_parse(bad, NULL), -1);
}
END_TEST

Suite *make_curve_suite(void)
{
    Suite *s = suite_create("curve");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, curve_parse_accepts_generated_keys);
    tcase_add_test(tc, curve_parse_refuses_malformed);
    suite_add_tcase(s, tc);
    return s;
}

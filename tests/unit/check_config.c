/* Config: file parsing, environment overrides, and errors that name the key and place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "suites.h"

static char path[64];

/* A program's own keys, as a module declares them. */
static const config_key_t test_keys[] = {
    CONFIG_INT("redis_port", "6379", 1, 65535, "Redis port"),
    CONFIG_STR("redis_prefix", "xmpp:", "key prefix"),
    CONFIG_BOOL("require_tls", "true", "STARTTLS first"),
    CONFIG_INT("max_stanza_size", "262144", 1024, 16777216, "stanza bytes"),
    CONFIG_END,
};

static void setup(void)
{
    config_reset();
    config_register(config_base_keys);
    config_register(test_keys);
}

static void write_conf(const char *text)
{
    snprintf(path, sizeof path, "/tmp/check_config_%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void teardown(void)
{
    unlink(path);
    unsetenv("XMPP_REDIS_PORT");
    unsetenv("XMPP_DOMAIN");
    unsetenv("XMPP_SCRAM_ITERATIONS");
    config_reset();
}

START_TEST(test_defaults)
{
    char err[256];
    ck_assert_int_eq(config_load(NULL, err, sizeof err), 0);
    ck_assert_str_eq(config_str("domain"), "localhost");
    ck_assert_int_eq(config_int("max_stanza_size"), 262144);
    ck_assert_int_eq(config_bool("require_tls"), 1);
}
END_TEST

START_TEST(test_file_and_env)
{
    write_conf("# comment\n\ndomain = example.org\nredis_port=7000\n"
               "require_tls = off\nredis_prefix = \"x # y:\"\n");
    setenv("XMPP_REDIS_PORT", "7001", 1);
    char err[256];
    ck_assert_int_eq(config_load(path, err, sizeof err), 0);
    ck_assert_str_eq(config_str("domain"), "example.org");
    ck_assert_int_eq(config_int("redis_port"), 7001); /* the environment wins */
    ck_assert_int_eq(config_bool("require_tls"), 0);
    ck_assert_str_eq(config_str("redis_prefix"), "x # y:");
}
END_TEST

static const struct {
    const char *text;
    const char *want; /* substring of the error */
} bad_files[] = {
    {"domain = a\nredis_port = abc\n", ":2: key 'redis_port': 'abc' is not a whole number"},
    {"redis_port = 70000\n", ":1: key 'redis_port': 70000 is outside 1..65535"},
    {"require_tls = maybe\n", "key 'require_tls': 'maybe' is not true or false"},
    {"no_such_key = 1\n", ":1: unknown key 'no_such_key'"},
    {"just words\n", ":1: expected 'key = value'"},
    {"log_level = loud\n", "key 'log_level': 'loud' is not debug, info, warn or error"},
    {"max_stanza_size = 10\n", "key 'max_stanza_size': 10 is outside"},
};

START_TEST(test_bad_values)
{
    write_conf(bad_files[_i].text);
    char err[512];
    ck_assert_int_eq(config_load(path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, bad_files[_i].want) != NULL, "error '%s' lacks '%s'", err,
                  bad_files[_i].want);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error '%s' does not name the file",
                  err);
}
END_TEST

START_TEST(test_bad_env)
{
    setenv("XMPP_REDIS_PORT", "-1", 1);
    char err[256];
    ck_assert_int_eq(config_load(NULL, err, sizeof err), -1);
    ck_assert_str_eq(err, "XMPP_REDIS_PORT: key 'redis_port': -1 is outside 1..65535");
}
END_TEST

/* The shared file may hold another program's keys (the build's index, mk/config.mk):
 * they are skipped, not taken and not refused; the environment is read for own keys only. */
START_TEST(test_other_programs_keys)
{
    write_conf("scram_iterations = 10\nredis_port = 7002\n");
    setenv("XMPP_SCRAM_ITERATIONS", "not even a number", 1);
    char err[256];
    ck_assert_msg(config_load(path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(config_int("redis_port"), 7002);
    ck_assert(config_known_key("scram_iterations"));
    ck_assert(config_known_key("redis_port"));
    ck_assert(!config_known_key("no_such_key"));
}
END_TEST

/* Registering the same key twice is fine when both declarations agree. */
START_TEST(test_register_twice)
{
    config_register(test_keys);
    config_register(config_base_keys);
    char err[256];
    ck_assert_int_eq(config_load(NULL, err, sizeof err), 0);
    ck_assert_int_eq(config_int("redis_port"), 6379);
}
END_TEST

/* --help-config: every registered key with its type, default, range and help. */
START_TEST(test_help)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_print_help(f, "prog");
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "domain\tstring\tdefault 'localhost'\tthe one domain served\n"));
    ck_assert_ptr_nonnull(strstr(text, "redis_port\tinteger\tdefault '6379'\trange 1..65535\tRedis port\n"));
    ck_assert_ptr_nonnull(strstr(text, "require_tls\tboolean\tdefault 'true'\tSTARTTLS first\n"));
    ck_assert_ptr_null(strstr(text, "scram_iterations"));
    free(text);
}
END_TEST

START_TEST(test_missing_file)
{
    char err[256];
    ck_assert_int_eq(config_load("/nonexistent/x.conf", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.conf: cannot open"));
}
END_TEST


/* Comma-separated values: entries trimmed of spaces and tabs, empty ones given as such
 * (for the caller's error), NULL after the last. */
START_TEST(test_list_next)
{
    const char *cur = " a ,\tbb,, c", *e;
    size_t n;
    const char *want[] = {"a", "bb", "", "c"};
    for (size_t i = 0; i < 4; i++) {
        e = config_list_next(&cur, &n);
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(n, strlen(want[i]));
        ck_assert(strncmp(e, want[i], n) == 0);
    }
    ck_assert_ptr_null(config_list_next(&cur, &n));
    cur = "x,";
    e = config_list_next(&cur, &n);
    ck_assert(n == 1 && *e == 'x');
    e = config_list_next(&cur, &n);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(config_list_next(&cur, &n));
    cur = "";
    ck_assert_ptr_nonnull(config_list_next(&cur, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(config_list_next(&cur, &n));
}
END_TEST

Suite *make_config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_file_and_env);
    tcase_add_loop_test(tc, test_bad_values, 0, sizeof bad_files / sizeof bad_files[0]);
    tcase_add_test(tc, test_bad_env);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_other_programs_keys);
    tcase_add_test(tc, test_register_twice);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_list_next);
    suite_add_tcase(s, tc);
    return s;
}

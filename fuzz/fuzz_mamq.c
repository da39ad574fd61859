/* libFuzzer harness for the XEP-0313 query parser (session-router/core/mamq.c), which reads
 * what a client sends to its own archive or to a room's: the data form (with, start, end,
 * before-id, after-id, ids) and XEP-0059 <set/>.
 *
 * Input: a <query/> as XML (parsed as the router parses a stanza). Checked: parsing never
 * crashes or leaks; a refusal names a type and condition; an accepted query keeps within
 * the page limit (max, ids) and the ids that must exist, and the ids it keeps parse. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mamq.h"
#include "stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_mamq: check failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define PAGE 20

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xml_node_t *x = stanza_parse((const char *)data, size);
    if (!x)
        return 0;
    mamq_query_t q;
    const char *etype = NULL, *cond = NULL;
    mamq_id_t min = {1000, 0};
    if (mamq_query_parse(x, PAGE, min, &q, &etype, &cond) < 0) {
        FUZZ_CHECK(etype && cond);
    } else {
        FUZZ_CHECK(q.max >= 0 && q.max <= PAGE);
        FUZZ_CHECK(q.nids <= PAGE);
        FUZZ_CHECK(q.nmust >= 0 && q.nmust <= MAMQ_MUST_MAX);
        FUZZ_CHECK(mamq_id_cmp(q.lo, min) >= 0 || (q.lo.ms == 0 && q.lo.seq == 1));
        for (int i = 0; i < q.nids; i++) {
            mamq_id_t id;
            char s[MAMQ_ID_MAX];
            FUZZ_CHECK(mamq_id_parse(q.ids[i], &id) == 0);
            mamq_id_fmt(id, s);
        }
        FUZZ_CHECK(!*q.with_full || strncmp(q.with_full, q.with_bare, strlen(q.with_bare)) == 0);
    }
    mamq_query_free(&q);
    xml_node_free(&x);
    return 0;
}

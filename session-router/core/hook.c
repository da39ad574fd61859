/* Hook points (hook.h): per point, the registered hooks sorted by priority. */
#include "hook.h"

#include <stdlib.h>

#include "util.h"

typedef struct {
    const mod_hook_t *h;
    size_t order; /* registration order, breaks priority ties */
} hook_entry_t;

static hook_entry_t *hooks[HOOK_MAX];
static size_t nhooks[HOOK_MAX];

static int hook_cmp(const void *a, const void *b)
{
    const hook_entry_t *x = a, *y = b;
    if (x->h->priority != y->h->priority)
        return x->h->priority > y->h->priority ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

void hook_add(const mod_hook_t *h, size_t order)
{
    hooks[h->id] = xrealloc(hooks[h->id], (nhooks[h->id] + 1) * sizeof *hooks[h->id]);
    hooks[h->id][nhooks[h->id]++] = (hook_entry_t){h, order};
}

void hook_sort(void)
{
    for (int id = 0; id < HOOK_MAX; id++)
        if (nhooks[id])
            qsort(hooks[id], nhooks[id], sizeof *hooks[id], hook_cmp);
}

void hook_clear(void)
{
    for (int id = 0; id < HOOK_MAX; id++) {
        free(hooks[id]);
        hooks[id] = NULL;
        nhooks[id] = 0;
    }
}

mod_result_t hook_run(hook_id_t id, hook_ev_t *ev)
{
    for (size_t i = 0; i < nhooks[id]; i++)
        if (hooks[id][i].h->fn(ev) == MOD_HANDLED)
            return MOD_HANDLED;
    return MOD_PASS;
}


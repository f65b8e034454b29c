/* /proc/PID/environ without the configuration. The kernel shows there the bytes between the
 * process's env_start and env_end: the strings that exec put on the stack, which removing a
 * variable from `environ` does not change. At start, the library copies those strings without the
 * HPCBOX_PRELOAD_* ones (nor what exec added for the loader: plan.c) into memory of its own (from
 * malloc, kept for the process's life), and the constructor points the range at the copy
 * (procself.c, hp_fix_proc_self: one prctl for argv and environ). Where the kernel refuses,
 * /proc/PID/environ keeps showing the configuration (README: Environment). Raw system calls only:
 * this runs in the constructor, and the library's own wrappers must not see it. Also the index of
 * the configuration's variables that setting up reads (hp_env_index). */
#define _GNU_SOURCE
#include "preload.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* (the first letter first: every process looks at each entry of its environment here) */
static bool ours(const char *entry)
{
    return entry[0] == HP_ENV_PREFIX[0] && strncmp(entry, HP_ENV_PREFIX, sizeof(HP_ENV_PREFIX) - 1) == 0;
}

/* Whether the entry is one the library added for the loader: LD_HWCAP_MASK=0 where marked so. */
static bool added(const char *entry, bool hwcap)
{
    return hwcap && entry[0] == HP_HWCAP_MASK[0] && strncmp(entry, HP_HWCAP_MASK "=", sizeof(HP_HWCAP_MASK)) == 0;
}

bool hp_env_hidden(const char *entry, bool hwcap)
{
    return ours(entry) || added(entry, hwcap);
}

char *hp_environ_copy(const struct hp_mm *m, size_t *used)
{
    const char *start, *end, *s;
    bool any = false, hwcap = false;
    char *copy;

    *used = 0;
    if (m->env_start == 0 || m->env_end <= m->env_start)
        return NULL;
    start = (const char *)(uintptr_t)m->env_start;
    end = (const char *)(uintptr_t)m->env_end;
    for (s = start; s < end; s += strnlen(s, (size_t)(end - s)) + 1) {
        if (ours(s)) {
            any = true;
            hwcap |= strncmp(s, HP_ENV_HWCAP "=", sizeof(HP_ENV_HWCAP)) == 0;
        }
    }
    if (!any)
        return NULL; /* nothing of ours in it (a program started with a cleaned environment) */
    /* on the heap, which setting up has already touched: no mmap, and likely no new page */
    copy = malloc((size_t)(end - start));
    if (!copy)
        return NULL;
    for (s = start; s < end;) {
        size_t len = strnlen(s, (size_t)(end - s));

        if (!hp_env_hidden(s, hwcap)) {
            memcpy(copy + *used, s, len);
            copy[*used + len] = '\0';
            *used += len + 1;
        }
        s += len + 1;
    }
    return copy;
}

/* The environment's HPCBOX_* entries, gathered in one pass: setting up makes ~40 lookups, each
 * of which getenv would make over the whole environment (~20k instructions in every process). */
void hp_env_index(struct hp_env_index *ix)
{
    extern char **environ;
    const int cap = (int)(sizeof(ix->entry) / sizeof(ix->entry[0]));

    ix->n = 0;
    for (char **e = environ; e && *e && ix->n < cap; e++) {
        const char *eq = strchr(*e, '=');

        if (eq && strncmp(*e, HP_ENV_FAMILY, sizeof(HP_ENV_FAMILY) - 1) == 0) {
            ix->name_len[ix->n] = (size_t)(eq - *e);
            ix->entry[ix->n++] = *e;
        }
    }
}

const char *hp_env_lookup(const struct hp_env_index *ix, const char *name)
{
    size_t len = strlen(name);

    if (strncmp(name, HP_ENV_FAMILY, sizeof(HP_ENV_FAMILY) - 1) != 0)
        return getenv(name);
    for (int i = 0; i < ix->n; i++) {
        if (ix->name_len[i] == len && memcmp(ix->entry[i], name, len) == 0)
            return ix->entry[i] + len + 1;
    }
    return NULL;
}

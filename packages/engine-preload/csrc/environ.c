/* /proc/PID/environ without the configuration. The kernel shows there the bytes between the
 * process's env_start and env_end: the strings that exec put on the stack, which removing a
 * variable from `environ` does not change. At start, the library copies those strings without the
 * HPCBOX_PRELOAD_* ones into a page of its own, and the constructor points the range at the copy
 * (procself.c, hp_fix_proc_self: one prctl for argv and environ). Where the kernel refuses,
 * /proc/PID/environ keeps showing the configuration (README: Environment). Raw system calls only:
 * this runs in the constructor, and the library's own wrappers must not see it. */
#define _GNU_SOURCE
#include "preload.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static bool ours(const char *entry)
{
    return strncmp(entry, HP_ENV_PREFIX, sizeof(HP_ENV_PREFIX) - 1) == 0;
}

char *hp_environ_copy(const unsigned long long *st, size_t *used, size_t *size)
{
    const char *start, *end, *s;
    char *copy;

    *used = *size = 0;
    if (st[50] == 0 || st[51] <= st[50])
        return NULL;
    start = (const char *)(uintptr_t)st[50];
    end = (const char *)(uintptr_t)st[51];
    for (s = start; s < end && !ours(s); s += strnlen(s, (size_t)(end - s)) + 1)
        ;
    if (s >= end)
        return NULL; /* nothing of ours in it (a program started with a cleaned environment) */
    *size = (size_t)(end - start);
    copy = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED)
        return NULL;
    for (s = start; s < end;) {
        size_t len = strnlen(s, (size_t)(end - s));

        if (!ours(s)) {
            memcpy(copy + *used, s, len);
            copy[*used + len] = '\0';
            *used += len + 1;
        }
        s += len + 1;
    }
    return copy;
}

/* /proc/PID/environ without the configuration. The kernel shows there the bytes between the
 * process's env_start and env_end: the strings that exec put on the stack, which removing a
 * variable from `environ` does not change. At start, the library copies those strings without the
 * HPCBOX_PRELOAD_* ones into a page of its own and points the range at the copy with
 * prctl(PR_SET_MM, PR_SET_MM_MAP), which needs no privilege (Linux >= 3.18 built with
 * CONFIG_CHECKPOINT_RESTORE, as distribution kernels are); every other field of the map is given
 * back as /proc/self/stat shows it. Where the kernel refuses, /proc/PID/environ keeps showing the
 * configuration (README: Environment). Raw system calls only: this runs in the constructor, and
 * the library's own wrappers of open/read must not see it. */
#define _GNU_SOURCE
#include "preload.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_MM
#define PR_SET_MM 35
#endif
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#endif

/* struct prctl_mm_map of <linux/prctl.h> (a stable ABI), spelt out for libcs without the header */
struct hp_mm_map {
    uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
    uint64_t arg_start, arg_end, env_start, env_end;
    uint64_t auxv;      /* pointer; 0 with auxv_size 0: unchanged */
    uint32_t auxv_size;
    uint32_t exe_fd;    /* -1: unchanged */
};

static bool ours(const char *entry)
{
    return strncmp(entry, HP_ENV_PREFIX, sizeof(HP_ENV_PREFIX) - 1) == 0;
}

void hp_hide_proc_environ(void)
{
    unsigned long long v[52] = {0};
    struct hp_mm_map m;
    const char *start, *end, *s;
    size_t size, used = 0;
    char *copy;

    if (hp_proc_stat(0, v, 52) < 0 || v[50] == 0 || v[51] <= v[50])
        return;
    start = (const char *)(uintptr_t)v[50];
    end = (const char *)(uintptr_t)v[51];
    for (s = start; s < end && !ours(s); s += strnlen(s, (size_t)(end - s)) + 1)
        ;
    if (s >= end)
        return; /* nothing of ours in it (a program started with a cleaned environment) */
    size = (size_t)(end - start);
    copy = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED)
        return;
    for (s = start; s < end;) {
        size_t len = strnlen(s, (size_t)(end - s));

        if (!ours(s)) {
            memcpy(copy + used, s, len);
            copy[used + len] = '\0';
            used += len + 1;
        }
        s += len + 1;
    }
    m = (struct hp_mm_map){
        .start_code = v[26], .end_code = v[27], .start_stack = v[28],
        .start_data = v[45], .end_data = v[46], .start_brk = v[47], .brk = (uint64_t)syscall(SYS_brk, 0),
        .arg_start = v[48], .arg_end = v[49],
        .env_start = (uint64_t)(uintptr_t)copy, .env_end = (uint64_t)(uintptr_t)copy + used,
        .exe_fd = (uint32_t)-1,
    };
    if (syscall(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0) < 0)
        munmap(copy, size);
}

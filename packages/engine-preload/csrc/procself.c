/* /proc/self as the program expects it when the container's loader started it
 * ("LOADER --library-path DIRS --inhibit-cache PROGRAM ARGS..."): /proc/self/exe followed (open,
 * stat, exec) is the program's file (hp_path, resolve.c; plan.c; readlink: paths.c), and /proc/self/cmdline
 * is the program's argv, not the loader's command line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

bool hp_is_proc_exe(const char *path)
{
    char own[64];

    if (strncmp(path, "/proc/", 6) != 0)
        return false;
    if (strcmp(path, "/proc/self/exe") == 0 || strcmp(path, "/proc/thread-self/exe") == 0)
        return true;
    snprintf(own, sizeof(own), "/proc/%d/exe", (int)getpid());
    return strcmp(path, own) == 0;
}

#ifndef PR_SET_MM
#define PR_SET_MM 35
#endif
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14 /* Linux 3.18; older kernel headers (a build host's) lack it */
#endif

/* struct prctl_mm_map of <linux/prctl.h> (a stable ABI), spelt out for libcs without the header */
struct hp_mm_map {
    uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
    uint64_t arg_start, arg_end, env_start, env_end;
    uint64_t auxv;      /* pointer; 0 with auxv_size 0: unchanged */
    uint32_t auxv_size;
    uint32_t exe_fd;    /* -1: unchanged */
};

/* Where argv0 goes in the kernel's argument area: right before argv[1] (over the end of the
 * loader's own arguments, which the loader has read and copied), when that lies inside the area
 * /proc/self/stat names; else NULL. */
static char *argv0_place(int argc, char **argv, size_t len, const unsigned long long *st)
{
    char *tail = argc > 1 ? argv[1] : argv[0] + strlen(argv[0]) + 1;
    char *start = tail - len;

    if (st[48] == 0 || (unsigned long long)(uintptr_t)argv[0] < st[48] ||
        (unsigned long long)(uintptr_t)tail > st[49] || (unsigned long long)(uintptr_t)start < st[48])
        return NULL;
    return start;
}

/* The memory map as /proc/self/stat shows it, with the argument and environment ranges given. */
static long set_mm(const unsigned long long *st, uint64_t arg_start, uint64_t env_start, uint64_t env_end)
{
    struct hp_mm_map m = {
        .start_code = st[26], .end_code = st[27], .start_stack = st[28],
        .start_data = st[45], .end_data = st[46], .start_brk = st[47], .brk = (uint64_t)syscall(SYS_brk, 0),
        .arg_start = arg_start, .arg_end = st[49], .env_start = env_start, .env_end = env_end,
        .exe_fd = (uint32_t)-1,
    };

    return syscall(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0);
}

/* argv[0] becomes argv0 (when given), written in the kernel's argument area, and the area's start
 * is moved there; the environment range is pointed at a copy without the configuration (when
 * hide_env: environ.c). One prctl(PR_SET_MM, PR_SET_MM_MAP) for both: unprivileged as long as the
 * exe file stays (Linux >= 3.18 built with CONFIG_CHECKPOINT_RESTORE, as distribution kernels
 * are), every other field given back as /proc/self/stat (st, NULL when unread) shows it. So
 * /proc/self/cmdline and ps show "ARGV0 ARGS...", and the argument strings stay contiguous as the
 * kernel laid them out (setproctitle-style rewriting works as natively). Where that cannot be done
 * (no such prctl, an area not laid out as expected), argv[0] is a copy and /proc/self/cmdline shows
 * the loader's command line. */
void hp_fix_proc_self(int argc, char **argv, const char *argv0, const unsigned long long *st, bool hide_env)
{
    size_t len = argv0 ? strlen(argv0) + 1 : 0, used = 0, size = 0;
    char *place = NULL, *env = NULL;
    uint64_t env_start, env_end;
    long rc;

    if (argv0 && (argc < 1 || !argv || !argv[0]))
        argv0 = NULL;
    if (st && argv0)
        place = argv0_place(argc, argv, len, st);
    if (st && hide_env)
        env = hp_environ_copy(st, &used, &size);
    env_start = env ? (uint64_t)(uintptr_t)env : (st ? st[50] : 0);
    env_end = env ? (uint64_t)(uintptr_t)env + used : (st ? st[51] : 0);
    rc = (place || env) ? set_mm(st, place ? (uint64_t)(uintptr_t)place : st[48], env_start, env_end) : -1;
    if (rc < 0 && place && env) { /* the argument area refused: the environment alone */
        place = NULL;
        rc = set_mm(st, st[48], env_start, env_end);
    }
    if (rc < 0) {
        place = NULL;
        if (env)
            munmap(env, size);
    }
    if (argv0 && place) {
        memmove(place, argv0, len);
        argv[0] = place;
    } else if (argv0) {
        argv[0] = strdup(argv0);
    }
}

void hp_set_comm(const char *name)
{
    if (name && *name)
        syscall(SYS_prctl, PR_SET_NAME, name, 0, 0, 0);
}

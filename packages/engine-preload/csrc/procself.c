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

/* argv[0] becomes argv0, written in the kernel's argument area right before argv[1] (over the end
 * of the loader's own arguments, which the loader has read and copied), and the area's start is
 * moved there with prctl(PR_SET_MM_MAP): unprivileged as long as the exe file stays, so
 * /proc/self/cmdline and ps show "ARGV0 ARGS...", and the argument strings stay contiguous with
 * the environment as the kernel laid them out (setproctitle-style rewriting works as natively).
 * Where that cannot be done (a kernel without PR_SET_MM_MAP, an area not laid out as expected),
 * argv[0] is a copy and /proc/self/cmdline shows the loader's command line. */
void hp_fix_argv(int argc, char **argv, const char *argv0)
{
    unsigned long long v[53];
    struct prctl_mm_map map;
    size_t len = strlen(argv0) + 1;
    char *tail, *start;

    if (argc < 1 || !argv || !argv[0])
        return;
    tail = argc > 1 ? argv[1] : argv[0] + strlen(argv[0]) + 1;
    start = tail - len;
    if (hp_proc_stat(0, v, 53) == 0 && v[48] != 0 && (unsigned long long)(uintptr_t)argv[0] >= v[48] &&
        (unsigned long long)(uintptr_t)tail <= v[49] && (unsigned long long)(uintptr_t)start >= v[48]) {
        memset(&map, 0, sizeof(map));
        map.start_code = v[26];
        map.end_code = v[27];
        map.start_stack = v[28];
        map.start_data = v[45];
        map.end_data = v[46];
        map.start_brk = v[47];
        map.brk = (unsigned long long)syscall(SYS_brk, 0);
        map.arg_start = (unsigned long long)(uintptr_t)start;
        map.arg_end = v[49];
        map.env_start = v[50];
        map.env_end = v[51];
        map.exe_fd = (unsigned)-1;
        if (syscall(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0) == 0) {
            memmove(start, argv0, len);
            argv[0] = start;
            return;
        }
    }
    argv[0] = strdup(argv0);
}

void hp_set_comm(const char *name)
{
    if (name && *name)
        syscall(SYS_prctl, PR_SET_NAME, name, 0, 0, 0);
}

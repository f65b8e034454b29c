/* /proc/self as the program expects it when the container's loader started it
 * ("LOADER --library-path DIRS --inhibit-cache PROGRAM ARGS..."): /proc/self/exe followed (open,
 * stat, exec) is the program's file (hp_path, resolve.c; plan.c; readlink: paths.c), and /proc/self/cmdline
 * is the program's argv, not the loader's command line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

bool hp_is_proc_exe(const char *path)
{
    const char *p = path + 6;
    long pid = 0;

    if (strncmp(path, "/proc/", 6) != 0)
        return false;
    if (strcmp(path, "/proc/self/exe") == 0 || strcmp(path, "/proc/thread-self/exe") == 0)
        return true;
    /* "/proc/<our pid>/exe", read without snprintf (libselinux's constructor reaches here from
     * every process: each page of libc's printf is a page fault) nor getpid for other paths */
    if (*p < '1' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9' && pid < 0x40000000; p++)
        pid = pid * 10 + (*p - '0');
    return strcmp(p, "/exe") == 0 && pid == (long)getpid();
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

/* The last option plan.c gives the glibc loader before the program (hp_loader_argv). */
#define HP_LAST_OPTION "--inhibit-cache"

/* The kernel's fields for the program's own segments, as exec computes them for a program it
 * loads itself (Linux >= 5.10: code is the executable segments): ld.so run as the command was
 * what exec loaded, and the program is what /proc/PID/stat should describe. */
static int program_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    struct hp_mm *m = data;
    unsigned long long start_code = ~0ULL, end_code = 0, start_data = 0, end_data = 0;

    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        unsigned long long low = ph->p_vaddr, high = ph->p_vaddr + ph->p_filesz;

        if (ph->p_type != PT_LOAD)
            continue;
        if ((ph->p_flags & PF_X) && low < start_code)
            start_code = low;
        if ((ph->p_flags & PF_X) && high > end_code)
            end_code = high;
        start_data = low > start_data ? low : start_data;
        end_data = high > end_data ? high : end_data;
    }
    if (start_code < end_code) {
        m->start_code = start_code + info->dlpi_addr;
        m->end_code = end_code + info->dlpi_addr;
        m->start_data = start_data + info->dlpi_addr;
        m->end_data = end_data + info->dlpi_addr;
    }
    return 1; /* the first object is the program */
}

/* Where the strings of n pointers that must follow each other end, or NULL when one does not. */
static const char *contiguous(char *const *v, int n, const char *at)
{
    for (int i = 0; i < n; i++) {
        if (v[i] != at)
            return NULL;
        at += strlen(at) + 1;
    }
    return at;
}

/* Exec copies the file name to the top of the stack, the environment strings below it and the
 * argument strings below those, back to back; glibc hands a constructor the loader's argv from the
 * program on (argv[0]: the program's host path, right after HP_LAST_OPTION) and the stack's envp.
 * So every range but the argument area's start is read off the strings, checked against that
 * layout (the file name's end one word below the page-aligned stack top), with no /proc read
 * (its first use in a process costs ~27 us). -1 when anything differs: /proc/self/stat then. */
int hp_mm_from_stack(int argc, char **argv, char **envp, struct hp_mm *m)
{
    const char *end, *top;
    int envc = 0;
    long page = (long)getauxval(AT_PAGESZ);

    if (argc < 1 || !argv || !argv[0] || !envp || page <= 0 ||
        memcmp(argv[0] - sizeof(HP_LAST_OPTION), HP_LAST_OPTION, sizeof(HP_LAST_OPTION)) != 0)
        return -1;
    memset(m, 0, sizeof(*m));
    end = contiguous(argv + 1, argc - 1, argv[0] + strlen(argv[0]) + 1);
    while (end && envp[envc])
        envc++;
    m->arg_end = m->env_start = (uintptr_t)end;
    end = end ? contiguous(envp, envc, end) : NULL;
    if (!end)
        return -1;
    top = end + strlen(end) + 1 + sizeof(void *);
    if ((uintptr_t)top % (unsigned long)page != 0)
        return -1;
    m->env_end = (uintptr_t)end;
    m->arg_floor = (uintptr_t)(argv[0] - sizeof(HP_LAST_OPTION));
    m->start_stack = (uintptr_t)(argv - 1); /* argc's place, where a program exec'd itself has it */
    m->start_brk = (unsigned long long)syscall(SYS_brk, 0); /* before this library allocates */
    dl_iterate_phdr(program_segments, m);
    return m->start_code ? 0 : -1;
}

#define HP_STAT_FIELDS 53 /* through env_end, field 51, and one more */

int hp_mm_from_stat(struct hp_mm *m)
{
    unsigned long long st[HP_STAT_FIELDS];

    if (hp_proc_stat(0, st, HP_STAT_FIELDS) != 0)
        return -1;
    *m = (struct hp_mm){
        .start_code = st[26], .end_code = st[27], .start_stack = st[28], .start_data = st[45],
        .end_data = st[46], .start_brk = st[47], .arg_start = st[48], .arg_floor = st[48],
        .arg_end = st[49], .env_start = st[50], .env_end = st[51],
    };
    dl_iterate_phdr(program_segments, m); /* the program's code, not its loader's (procs.c) */
    return st[48] ? 0 : -1;
}

/* Where argv0 goes in the kernel's argument area: right before argv[1] (over the end of the
 * loader's own arguments, which the loader has read and copied), when that lies inside the area;
 * else NULL. */
static char *argv0_place(int argc, char **argv, size_t len, const struct hp_mm *m)
{
    char *tail = argc > 1 ? argv[1] : argv[0] + strlen(argv[0]) + 1;
    char *start = tail - len;

    if (m->arg_floor == 0 || (uintptr_t)argv[0] < m->arg_floor || (uintptr_t)tail > m->arg_end ||
        (uintptr_t)start < m->arg_floor)
        return NULL;
    return start;
}

/* The memory map as m describes it, with the argument and environment ranges given. */
static long set_mm(const struct hp_mm *m, uint64_t arg_start, uint64_t env_start, uint64_t env_end)
{
    struct hp_mm_map map = {
        .start_code = m->start_code, .end_code = m->end_code, .start_stack = m->start_stack,
        .start_data = m->start_data, .end_data = m->end_data, .start_brk = m->start_brk,
        .brk = (uint64_t)syscall(SYS_brk, 0), .arg_start = arg_start, .arg_end = m->arg_end,
        .env_start = env_start, .env_end = env_end, .exe_fd = (uint32_t)-1,
    };

    if (arg_start == 0)
        return -EINVAL; /* the area's start is not known: not moved anywhere else */
    return syscall(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0);
}

/* argv[0] becomes argv0 (when given), written in the kernel's argument area, and the area's start
 * is moved there; the environment range is pointed at a copy without the configuration (when
 * hide_env: environ.c). One prctl(PR_SET_MM, PR_SET_MM_MAP) for both: unprivileged as long as the
 * exe file stays (Linux >= 3.18 built with CONFIG_CHECKPOINT_RESTORE, as distribution kernels
 * are), every other field given back as the process has it (m; /proc/self/stat read here when m
 * lacks what is needed). So /proc/self/cmdline and ps show "ARGV0 ARGS...", and the argument
 * strings stay contiguous as the kernel laid them out (setproctitle-style rewriting works as
 * natively). Where that cannot be done (no such prctl, an area not laid out as expected), argv[0]
 * is a copy and /proc/self/cmdline shows the loader's command line. */
void hp_fix_proc_self(int argc, char **argv, const char *argv0, const struct hp_mm *m, bool hide_env)
{
    size_t len = argv0 ? strlen(argv0) + 1 : 0, used = 0;
    char *place = NULL, *env = NULL;
    struct hp_mm read;
    uint64_t env_start, env_end;
    long rc;

    if (argv0 && (argc < 1 || !argv || !argv[0]))
        argv0 = NULL;
    if (m && argv0)
        place = argv0_place(argc, argv, len, m);
    if ((!m || (!place && m->arg_start == 0)) && (argv0 || hide_env))
        m = hp_mm_from_stat(&read) == 0 ? &read : NULL;
    if (m && argv0 && !place)
        place = argv0_place(argc, argv, len, m);
    if (m && hide_env)
        env = hp_environ_copy(m, &used);
    env_start = env ? (uint64_t)(uintptr_t)env : (m ? m->env_start : 0);
    env_end = env ? (uint64_t)(uintptr_t)env + used : (m ? m->env_end : 0);
    rc = (place || env) ? set_mm(m, place ? (uint64_t)(uintptr_t)place : m->arg_start, env_start, env_end) : -1;
    if (rc < 0 && place && env) { /* the argument area refused: the environment alone */
        place = NULL;
        rc = set_mm(m, m->arg_start, env_start, env_end);
    }
    if (rc < 0) {
        place = NULL;
        free(env);
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

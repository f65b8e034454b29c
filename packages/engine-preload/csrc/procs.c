/* /proc/PID/exe of the container's OTHER processes. The kernel names there the file given to exec,
 * which for every program the library starts is the container's loader ("LOADER --library-path
 * DIRS --inhibit-cache PROGRAM ARGS..."). A process knows its own program (HP_ENV_EXE: procself.c);
 * for the others the container keeps a registry (HP_ENV_PROCS, a directory beside the rootfs that
 * the engine creates; README "/proc/PID/exe"):
 *
 *   - each process started through its loader writes, from its constructor, one symlink named
 *     after its pid modulo HP_PROCS_SLOTS whose target is "PID START LOADER PROGRAM": its pid, its
 *     start time (field 22 of /proc/PID/stat: pid and start time name one process for the life of
 *     the machine), a hash of the loader's host path (what the kernel's exe link holds; 16 hex
 *     digits: short targets fit in the inode on most file systems) and the program's guest path;
 *     a symlink is written in one system call and read in one;
 *   - a reader of /proc/PID/exe (readlink, or a path through it) takes the program from there
 *     only when all three still hold: the pid, its start time, and the kernel's link naming that
 *     loader. Anything else (no entry, a slot taken by a later process, a process that exec'd a
 *     static program under the tracer, a process outside the container) shows the kernel's link.
 *
 * Bounded: at most HP_PROCS_SLOTS entries per container, reused as pids wrap. Two live processes
 * whose pids share a slot: the later one's entry wins and the earlier shows its loader. Raw
 * system calls only: the wrappers of symlink/readlink/open would translate these host paths. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

#define HP_PROCS_SLOTS 16384

int hp_proc_stat(long pid, unsigned long long *v, int count)
{
    char path[64], buf[2048];
    long fd, n, done = 0;
    char *p;
    int field = 3;

    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while ((n = syscall(SYS_read, (int)fd, buf + done, sizeof(buf) - 1 - (size_t)done)) > 0)
        done += n;
    if (n < 0)
        n = -errno;
    syscall(SYS_close, (int)fd);
    if (n < 0)
        return (int)n;
    buf[done] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p || p[1] != ' ')
        return -EIO;
    for (p += 2; *p && field < count; field++) {
        const char *token_end = p + strcspn(p, " \n");
        unsigned long long x = 0;

        for (const char *q = p; q < token_end; q++) /* the state letter and signs: not used */
            if (*q >= '0' && *q <= '9')
                x = x * 10 + (unsigned long long)(*q - '0');
        v[field] = x;
        p = *token_end ? (char *)token_end + 1 : (char *)token_end;
    }
    return field == count ? 0 : -EIO;
}

/* Field 22 of /proc/PID/stat: the start time, in clock ticks after boot. 0 or -errno. */
static int start_time(long pid, unsigned long long *out)
{
    unsigned long long v[23];
    int rc = hp_proc_stat(pid, v, 23);

    if (rc == 0)
        *out = v[22];
    return rc;
}

/* 16 hex digits of a 64-bit FNV-1a hash of s. */
static void hash16(const char *s, char out[17])
{
    unsigned long long h = 0xcbf29ce484222325ull;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    snprintf(out, 17, "%016llx", h);
}

/* The registry entry's host path for pid, into out (PATH_MAX): 0 or -errno. */
static int entry_path(const struct hp_config *c, long pid, char *out)
{
    int n = snprintf(out, PATH_MAX, "%s/%ld", c->procs, pid % HP_PROCS_SLOTS);

    return n > 0 && n < PATH_MAX ? 0 : -ENAMETOOLONG;
}

int hp_register_exe(const struct hp_config *c)
{
    char entry[PATH_MAX], loader[PATH_MAX], target[PATH_MAX], tag[17];
    unsigned long long start = 0;
    long pid = (long)syscall(SYS_getpid), n;
    int rc, len;

    if (!c->procs || !c->exe[0])
        return 0;
    n = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", loader, sizeof(loader) - 1);
    if (n < 0)
        return -errno;
    loader[n] = '\0';
    rc = start_time(pid, &start);
    if (rc == 0)
        rc = entry_path(c, pid, entry);
    if (rc < 0)
        return rc;
    hash16(loader, tag);
    len = snprintf(target, sizeof(target), "%ld %llu %s %s", pid, start, tag, c->exe);
    if (len < 0 || len >= (int)sizeof(target))
        return -ENAMETOOLONG; /* not registered: others see the loader */
    if (syscall(SYS_symlinkat, target, AT_FDCWD, entry) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    /* the slot of an earlier process: replaced (a reader in between finds no entry) */
    if (syscall(SYS_unlinkat, AT_FDCWD, entry, 0) < 0 && errno != ENOENT)
        return -errno;
    return syscall(SYS_symlinkat, target, AT_FDCWD, entry) == 0 ? 0 : -errno;
}

/* "/proc/<digits>/exe" or "/proc/<digits>/task/<digits>/exe": the pid, else 0. */
static long exe_link_pid(const char *path)
{
    const char *p = path + 6;
    long pid = 0;

    if (strncmp(path, "/proc/", 6) != 0 || *p < '1' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9' && pid < 0x40000000; p++)
        pid = pid * 10 + (*p - '0');
    if (strncmp(p, "/task/", 6) == 0) {
        for (p += 6; *p >= '0' && *p <= '9'; p++)
            ;
    }
    return strcmp(p, "/exe") == 0 ? pid : 0;
}

int hp_other_exe(const char *path, const char *kernel_link, char *out, size_t size)
{
    const struct hp_config *c = hp_conf();
    char entry[PATH_MAX], target[PATH_MAX], link[PATH_MAX], tag[17], loader[17];
    int guest = 0;
    unsigned long long start = 0, now = 0;
    long pid, n;
    int rc;

    if (!c || !c->procs || (pid = exe_link_pid(path)) == 0)
        return -ENOENT;
    if (!kernel_link) {
        n = syscall(SYS_readlinkat, AT_FDCWD, path, link, sizeof(link) - 1);
        if (n < 0)
            return -errno;
        link[n] = '\0';
        kernel_link = link;
    }
    rc = entry_path(c, pid, entry);
    if (rc < 0)
        return rc;
    n = syscall(SYS_readlinkat, AT_FDCWD, entry, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = '\0';
    if (sscanf(target, "%ld %llu %16[0-9a-f] %n", &n, &start, loader, &guest) != 3 || guest == 0 ||
        n != pid || target[guest] != '/')
        return -ENOENT;
    hash16(kernel_link, tag);
    if (strcmp(loader, tag) != 0 || start_time(pid, &now) < 0 || now != start)
        return -ENOENT; /* another process now, or the same one running something else */
    if (strlen(target + guest) >= size)
        return -ENAMETOOLONG;
    memcpy(out, target + guest, strlen(target + guest) + 1);
    return 0;
}

/* /proc/PID/exe of the container's OTHER processes. The kernel names there the file given to exec,
 * which for every program the library starts is the container's loader ("LOADER --library-path
 * DIRS --inhibit-cache PROGRAM ARGS..."). A process knows its own program (HP_ENV_EXE: procself.c);
 * for the others the container keeps a registry (HP_ENV_PROCS: `processes` beside the rootfs, a
 * file of HP_PROCS_SLOTS slots of HP_PROCS_SLOT bytes that the engine creates, sparse; README
 * "How it works", 4):
 *
 *   - each process started through its loader writes, from its constructor, the slot of its pid
 *     (pid modulo HP_PROCS_SLOTS) with one pwrite: "PID WHEN LOADER PROGRAM" (its pid; when the
 *     entry was written, in the clock ticks of field 22 of /proc/PID/stat, the start time; a hash
 *     of the loader's host path, which the kernel's exe link holds; the program's guest path),
 *     NUL-padded, then a hash of those bytes (a slot read while written is refused);
 *   - a reader of /proc/PID/exe (readlink, or a path through it) takes the program from there
 *     only when the slot is whole and all three hold: the pid, a process of that pid started no
 *     later than the entry was written (a later process of the same pid starts after the writer
 *     ended; its pid cannot come round again within one tick), and the kernel's link naming that
 *     loader. Anything else (no entry, a slot taken by a later process, a process that exec'd a
 *     static program under the tracer, a process outside the container, a program path too long
 *     for a slot) shows the kernel's link.
 *
 * The writer needs no /proc read: the time is the clock's (CLOCK_BOOTTIME, which start times count
 * in) and the loader's path is the one exec was given (procself.c). Bounded: one file of 4 MiB at
 * most per container; its blocks are written in place, no inode or directory entry made per
 * process (a symlink per process cost ~0.7 ms per exec on ext4 here). Two live processes whose
 * pids share a slot: the later one's entry wins, the earlier shows its loader. Raw system calls
 * only: the library's wrappers would translate these host paths. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

#define HP_PROCS_SLOTS 16384
#define HP_PROCS_SLOT 256

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

void hp_hex16(unsigned long long v, char out[17])
{
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = "0123456789abcdef"[v & 15];
    out[16] = '\0';
}

/* 16 hex digits of a 64-bit FNV-1a hash of s. Here and below no stdio: every process writes its
 * slot from its constructor, and each page of libc's printf it would reach is a page fault. */
static void hash16(const char *s, char out[17])
{
    unsigned long long h = 0xcbf29ce484222325ull;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    hp_hex16(h, out);
}

/* The decimal digits of v at out, then a space: how many bytes. */
static size_t put_number(char *out, unsigned long long v)
{
    char digits[24];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = ' ';
    return n + 1;
}

#define HP_PROCS_TEXT (HP_PROCS_SLOT - 16) /* then 16 hex digits: the hash of the text */

/* A slot's bytes: the text NUL-padded, then its hash. */
static void seal(char slot[HP_PROCS_SLOT])
{
    char text[HP_PROCS_TEXT + 1], tag[17];

    memcpy(text, slot, HP_PROCS_TEXT);
    text[HP_PROCS_TEXT] = '\0';
    hash16(text, tag);
    memcpy(slot + HP_PROCS_TEXT, tag, 16);
}

/* Now, in the clock ticks of /proc/PID/stat's start times (rounded down, as they are). */
static unsigned long long ticks_now(void)
{
    struct timespec now;
    unsigned long long hz = getauxval(AT_CLKTCK) ? getauxval(AT_CLKTCK) : 100;

    /* the system call, not the vDSO: its code and data pages would be two page faults */
    if (syscall(SYS_clock_gettime, CLOCK_BOOTTIME, &now) != 0)
        return 0;
    return (unsigned long long)now.tv_sec * hz + (unsigned long long)now.tv_nsec / (1000000000ULL / hz);
}

/* hp_register_exe with the loader's path: the slot "PID WHEN LOADER PROGRAM" (or PROGRAM "-" when
 * too long for a slot, then -ENAMETOOLONG) written with one pwrite. */
static int register_as(const struct hp_config *c, const char *loader, unsigned long long when)
{
    char slot[HP_PROCS_SLOT];
    long pid = (long)syscall(SYS_getpid), n;
    size_t len, exe_len = strlen(c->exe);
    bool fits;
    int rc, fd;

    memset(slot, 0, sizeof(slot));
    len = put_number(slot, (unsigned long long)pid);
    len += put_number(slot + len, when);
    hash16(loader, slot + len);
    slot[len + 16] = ' ';
    len += 17;
    fits = len + exe_len < HP_PROCS_TEXT;
    if (fits) /* else not registered (others see the loader); nor an earlier program */
        memcpy(slot + len, c->exe, exe_len);
    else
        slot[len] = '-';
    seal(slot);
    fd = (int)syscall(SYS_openat, AT_FDCWD, c->procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = syscall(SYS_pwrite64, fd, slot, sizeof(slot), (long)(pid % HP_PROCS_SLOTS) * HP_PROCS_SLOT);
    rc = n == (long)sizeof(slot) ? 0 : n < 0 ? -errno : -EIO;
    syscall(SYS_close, fd);
    return rc < 0 ? rc : fits ? 0 : -ENAMETOOLONG;
}

/* Without the loader's path: the kernel's /proc/self/exe. Apart (noinline): its buffer is in no
 * frame of the common case (every stack page a constructor touches is a page fault). */
static __attribute__((noinline)) int register_by_link(const struct hp_config *c, unsigned long long when)
{
    char link[PATH_MAX];
    long n = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", link, sizeof(link) - 1);

    if (n < 0)
        return -errno;
    link[n] = '\0';
    return register_as(c, link, when);
}

int hp_register_exe(const struct hp_config *c, const char *loader)
{
    unsigned long long when = ticks_now();

    if (!c->procs || !c->exe[0] || when == 0)
        return 0;
    return loader ? register_as(c, loader, when) : register_by_link(c, when);
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
    char slot[HP_PROCS_SLOT], target[HP_PROCS_TEXT + 1], link[PATH_MAX], tag[17], loader[17];
    int guest = 0, fd;
    unsigned long long when = 0, started = 0;
    long pid, n;

    if (!c || !c->procs || (pid = exe_link_pid(path)) == 0)
        return -ENOENT;
    if (!kernel_link) {
        n = syscall(SYS_readlinkat, AT_FDCWD, path, link, sizeof(link) - 1);
        if (n < 0)
            return -errno;
        link[n] = '\0';
        kernel_link = link;
    }
    fd = (int)syscall(SYS_openat, AT_FDCWD, c->procs, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = syscall(SYS_pread64, fd, slot, sizeof(slot), (long)(pid % HP_PROCS_SLOTS) * HP_PROCS_SLOT);
    syscall(SYS_close, fd);
    if (n != (long)sizeof(slot))
        return -ENOENT;
    memcpy(target, slot, HP_PROCS_TEXT);
    target[HP_PROCS_TEXT] = '\0';
    hash16(target, tag);
    if (memcmp(slot + HP_PROCS_TEXT, tag, 16) != 0)
        return -ENOENT; /* never written, or being written */
    if (sscanf(target, "%ld %llu %16[0-9a-f] %n", &n, &when, loader, &guest) != 3 || guest == 0 ||
        n != pid || target[guest] != '/')
        return -ENOENT;
    hash16(kernel_link, tag);
    if (strcmp(loader, tag) != 0 || start_time(pid, &started) < 0 || started > when)
        return -ENOENT; /* another process now, or the same one running something else */
    if (strlen(target + guest) >= size)
        return -ENAMETOOLONG;
    memcpy(out, target + guest, strlen(target + guest) + 1);
    return 0;
}

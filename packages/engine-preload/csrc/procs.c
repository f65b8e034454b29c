/* /proc/PID/exe of the container's OTHER processes. The kernel names there the file given to exec,
 * which for every program the library starts is the container's loader ("LOADER --library-path
 * DIRS --inhibit-cache PROGRAM ARGS..."). A process knows its own program (HP_ENV_EXE: procself.c);
 * another process's program is found where its code is: each process started through its loader
 * sets the code range of its memory map to its program's executable segment (the constructor's
 * PR_SET_MM_MAP, procself.c), so field 26 of /proc/PID/stat (start of code) lies in the program's
 * mapping, and /proc/PID/maps names the file mapped there (README "How it works", 4).
 *
 * Only where that file is not the one the kernel's link names (a process the kernel started
 * itself has its code in its exe) and it lies in the container (the rootfs or a volume) is the
 * program shown; anything else (a process outside the container, one whose map could not be set,
 * a pid that ended meanwhile, no permission to read its map) shows the kernel's link. Nothing is
 * written when a process starts, and nothing is shared between the machines a job runs on (the
 * earlier registry was a file beside the rootfs, written by every process: on a shared file
 * system, a write and a flush per exec, and the pids of another node in its slots). The same
 * permission as the kernel's link: another user's process, or one that is not dumpable, shows
 * its code at 1 in /proc/PID/stat. Raw system calls only: the library's wrappers would translate
 * these host paths. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

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

void hp_hex16(unsigned long long v, char out[17])
{
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = "0123456789abcdef"[v & 15];
    out[16] = '\0';
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

/* The file mapped at addr in /proc/PID/maps (sorted by address): its path (with the kernel's
 * " (deleted)" when it is) into path[size], 0; -ENOENT when nothing, or no file, is mapped there. */
static int mapped_file(long pid, unsigned long long addr, char *path, size_t size)
{
    char name[64], buf[PATH_MAX + 256];
    size_t have = 0, at = 0;
    int rc = -ENOENT;
    long fd, n;

    snprintf(name, sizeof(name), "/proc/%ld/maps", pid);
    fd = syscall(SYS_openat, AT_FDCWD, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        char *line = buf + at, *nl = memchr(line, '\n', have - at), *p;
        unsigned long long low, high;

        if (!nl) { /* refill after the lines read so far; a line longer than buf: give up */
            memmove(buf, line, have - at);
            have -= at;
            at = 0;
            n = have < sizeof(buf) ? syscall(SYS_read, (int)fd, buf + have, sizeof(buf) - have) : 0;
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        *nl = '\0';
        at = (size_t)(nl + 1 - buf);
        low = strtoull(line, &p, 16);
        high = *p == '-' ? strtoull(p + 1, &p, 16) : 0;
        if (addr < low)
            break;
        if (addr >= high)
            continue;
        for (int field = 0; field < 4 && p; field++) /* perms, offset, device, inode */
            p = strchr(p + 1, ' ');
        while (p && *p == ' ')
            p++;
        if (p && *p == '/' && strlen(p) < size) {
            memcpy(path, p, strlen(p) + 1);
            rc = 0;
        }
        break;
    }
    syscall(SYS_close, (int)fd);
    return rc;
}

int hp_other_exe(const char *path, const char *kernel_link, char *out, size_t size)
{
    static const char deleted[] = " (deleted)";
    const struct hp_config *c = hp_conf();
    char link[PATH_MAX], program[PATH_MAX];
    unsigned long long v[27];
    size_t len;
    long pid, n;
    bool gone;
    int rc;

    if (!c || (pid = exe_link_pid(path)) == 0)
        return -ENOENT;
    if (!kernel_link) {
        n = syscall(SYS_readlinkat, AT_FDCWD, path, link, sizeof(link) - 1);
        if (n < 0)
            return -errno;
        link[n] = '\0';
        kernel_link = link;
    }
    if ((rc = hp_proc_stat(pid, v, 27)) < 0 || (rc = mapped_file(pid, v[26], program, sizeof(program))) < 0)
        return rc;
    if (strcmp(program, kernel_link) == 0)
        return -ENOENT; /* its code is the file exec loaded: no program of a loader */
    len = strlen(program);
    gone = len > sizeof(deleted) - 1 && strcmp(program + len - (sizeof(deleted) - 1), deleted) == 0;
    if (gone)
        program[len - (sizeof(deleted) - 1)] = '\0';
    rc = gp_to_guest(&c->ctx, program, out, size);
    if (rc != 0)
        return rc < 0 ? rc : -ENOENT; /* GP_OUTSIDE: not a program of the container */
    if (gone && strlen(out) + sizeof(deleted) > size)
        return -ENAMETOOLONG;
    if (gone)
        strcat(out, deleted);
    return 0;
}

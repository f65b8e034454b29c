/* landlock: the kernel-enforced backstop of the path-translating engines (ptrace, preload).
 *
 * The engines translate every path a program gives the kernel; a route they miss would reach the
 * host. With Landlock (Linux 5.13+, unprivileged) the container's processes are restricted so that
 * writes (create, remove, rename, link, truncate, write-open) succeed only beneath the directories
 * and files allowed here: the rootfs, the read-write bindings, /dev, /proc, /sys and what the
 * engine itself needs. Reading and executing are not restricted. A write elsewhere fails with
 * EACCES (EXDEV for a rename or link into such a place) instead of landing on the host.
 *
 * ABI 2 is the minimum: without LANDLOCK_ACCESS_FS_REFER (ABI 1) the kernel refuses every rename
 * or link between directories, which would break ordinary programs. ABI 3 adds truncate.
 *
 * No global state; no allocation. The ruleset is built first (hb_landlock_open, hb_landlock_allow*)
 * by a process that may open host paths, and enforced later (hb_landlock_enforce) by the process
 * that will become the container, e.g. a tracer's child just before exec: enforcing opens nothing.
 */
#ifndef HPCBOX_LANDLOCK_H
#define HPCBOX_LANDLOCK_H

#include <stdbool.h>

#define HB_LANDLOCK_MIN_ABI 2

struct hb_landlock {
    int fd;                         /* the ruleset, -1 when none */
    int abi;                        /* the kernel's Landlock ABI version */
    unsigned long long handled;     /* the write rights this ruleset restricts */
};

/* The kernel's Landlock ABI version (>= 1), or -errno: -ENOSYS (no Landlock in the kernel),
 * -EOPNOTSUPP (built in but disabled at boot). */
int hb_landlock_abi(void);

/* Create a ruleset restricting writes. 0, or -errno; -EOPNOTSUPP also for an ABI below
 * HB_LANDLOCK_MIN_ABI. ll->fd is -1 after a failure. */
int hb_landlock_open(struct hb_landlock *ll);

/* Allow writes beneath path (a directory) or to it (any other file: write and truncate only).
 * 0, or -errno (-ENOENT when it does not exist). */
int hb_landlock_allow(struct hb_landlock *ll, const char *path);

/* The same for the file open at fd (a directory, a regular file or a device; pipes and sockets
 * are not in the file system and need no rule): 0, or -errno. */
int hb_landlock_allow_fd(struct hb_landlock *ll, int fd);

/* Allow writes to the regular files and devices that fds 0, 1 and 2 are open for writing on
 * (`prog > host.log` and then a reopen of /dev/stdout): 0, or -errno. */
int hb_landlock_allow_stdio(struct hb_landlock *ll);

/* no_new_privs, then restrict the calling thread (and what it execs or forks) to the ruleset;
 * closes it. 0 or -errno. Makes no path lookup. */
int hb_landlock_enforce(struct hb_landlock *ll);

/* Close the ruleset without enforcing it. */
void hb_landlock_close(struct hb_landlock *ll);

#endif

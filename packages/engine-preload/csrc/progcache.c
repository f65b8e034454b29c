/* The last dynamically linked program planned for exec (plan.c), by file identity, with its
 * PT_INTERP: the next exec of the same file skips opening and reading it (three system calls; a
 * shell's loop runs the same few programs again and again).
 *
 * The kernel reads the file at every exec. The identity (device, inode, size, mtime, ctime) stands
 * for the content: writing a file changes its mtime and ctime, replacing it its inode, and ctime
 * cannot be set back. Where a vfork child (dash, posix_spawn, Python's subprocess) plans its exec,
 * the entry lands in its parent's memory, so the parent's next child finds it; a try-lock, so a
 * thread never waits for it and a child forked while another thread held it only skips it. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>

#include "preload.h"

struct known_program {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    /* small, like the directory cache: each page of .bss a process writes is a page fault; a
     * longer PT_INTERP (rare: "/lib64/ld-linux-x86-64.so.2" is 27 bytes) is not remembered */
    char interp[96];
};

static struct known_program known HP_DATA;
static int known_lock;

static bool try_lock(void)
{
    return !__atomic_exchange_n(&known_lock, 1, __ATOMIC_ACQUIRE);
}

static void unlock(void)
{
    __atomic_store_n(&known_lock, 0, __ATOMIC_RELEASE);
}

static bool same_file(const struct known_program *k, const struct stat *st)
{
    return k->interp[0] && k->dev == st->st_dev && k->ino == st->st_ino && k->size == st->st_size &&
           k->mtime.tv_sec == st->st_mtim.tv_sec && k->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           k->ctime.tv_sec == st->st_ctim.tv_sec && k->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

bool hp_known_program(const struct stat *st, char *interp, size_t size)
{
    bool hit = false;

    if (try_lock()) {
        size_t n = strlen(known.interp);

        hit = same_file(&known, st) && n < size;
        if (hit)
            memcpy(interp, known.interp, n + 1);
        unlock();
    }
    return hit;
}

void hp_remember_program(const struct stat *st, const char *interp)
{
    size_t n = strlen(interp);

    if (n == 0 || n >= sizeof(known.interp) || !try_lock())
        return;
    known.dev = st->st_dev;
    known.ino = st->st_ino;
    known.size = st->st_size;
    known.mtime = st->st_mtim;
    known.ctime = st->st_ctim;
    memcpy(known.interp, interp, n + 1);
    unlock();
}

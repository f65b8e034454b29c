/* Raw system calls for the guest-path core and the wrappers: they reach the kernel without
 * passing through this library's exported wrappers, and reference no versioned glibc symbol. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"

void *hp_next_symbol(const char *name); /* next.c */

#undef fstatat
#undef stat
#undef readlinkat
#undef realpath

int hp_sys_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}

static int trust_canonical; /* only changed by setup() in config.c, which runs once, alone */

/* The core's stat, which only its gp_context_init makes (of the rootfs): of a rootfs a parent
 * resolved and found a directory, while trusted, that directory's type alone, without a system
 * call in every process (a rootfs gone since fails every path under it anyway). */
int hp_sys_stat(const char *path, struct stat *st)
{
    if (trust_canonical) {
        memset(st, 0, sizeof(*st));
        st->st_mode = S_IFDIR;
        return 0;
    }
    return hp_sys_fstatat(AT_FDCWD, path, st, 0);
}

ssize_t hp_sys_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    return (ssize_t)syscall(SYS_readlinkat, dirfd, path, buf, size);
}

void hp_sys_trust_canonical(int on)
{
    trust_canonical = on;
}

/* The host's realpath, for host paths only (the rootfs, bindings): libc's own, never ours. */
char *hp_sys_realpath(const char *path, char *resolved)
{
    static char *(*next)(const char *, char *);

    if (trust_canonical && path[0] == '/' && resolved) {
        size_t n = strlen(path);

        if (n >= PATH_MAX) {
            errno = ENAMETOOLONG;
            return NULL;
        }
        memcpy(resolved, path, n + 1);
        return resolved;
    }
    if (!next) {
        next = (char *(*)(const char *, char *))hp_next_symbol("realpath");
        if (!next) {
            errno = ENOSYS;
            return NULL;
        }
    }
    return next(path, resolved);
}

/* Wrappers of libc's path-taking file functions: open, stat, access, create/remove/rename,
 * permissions and times, xattr. Each translates its guest path(s) with hp_path and calls the real
 * function; a path that cannot resolve fails with the errno the kernel would give. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/inotify.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include "preload.h"

/* Translate `path` relative to `dirfd` into `p_` or fail with `err` (errno set by hp_path). */
#define TR(var, dirfd, path, flags, err)                                                           \
    char var##_buf[PATH_MAX];                                                                      \
    const char *var = hp_path((dirfd), (path), (flags), var##_buf);                                \
    if (!var)                                                                                      \
        return err;

/* rename and link: across bindings EXDEV, a binding's own guest path EBUSY, a read-only binding
 * EROFS, in Linux's order (the names translated without HP_WRITE; nh: new's host path). */
#define MOVE_CHECK(od, o, nd, n, nh, kind, follow, fl)                                             \
    do {                                                                                           \
        int move_ = hp_check_move((od), (o), (nd), (n), (nh), (kind), (follow), (fl));             \
        if (move_ == GP_SAME)                                                                      \
            return 0;                                                                              \
        if (move_ < 0) {                                                                           \
            errno = -move_;                                                                        \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* link's new name into `var`; where it cannot resolve, old's own lookup error comes first, as
 * Linux looks old up before new's directory (old: the host path, ofl: fstatat's flags for it). */
#define TR_LINK_NEW(var, dirfd, path, odirfd, old, ofl)                                            \
    char var##_buf[PATH_MAX];                                                                      \
    const char *var = hp_path((dirfd), (path), HP_PARENT | HP_MOVE, var##_buf);                    \
    if (!var) {                                                                                    \
        int new_errno_ = errno;                                                                    \
        struct stat old_st_;                                                                       \
        if (*(old) && hp_sys_fstatat((odirfd), (old), &old_st_, (ofl)) < 0)                        \
            return -1;                                                                             \
        errno = new_errno_;                                                                        \
        return -1;                                                                                 \
    }

/* One guest path, relative to the cwd. */
#define W1(ret, name, follow, err, params, args)                                                   \
    WRAP ret name params                                                                           \
    {                                                                                              \
        TR(p_, AT_FDCWD, path, follow, err)                                                        \
        return REAL(name) args;                                                                    \
    }

/* One guest path relative to dirfd; `follow` may use the function's flags. */
#define WAT(ret, name, follow, err, params, args)                                                  \
    WRAP ret name params                                                                           \
    {                                                                                              \
        TR(p_, dirfd, path, follow, err)                                                           \
        return REAL(name) args;                                                                    \
    }

#define AT_FOLLOW(flags) (((flags) & AT_SYMLINK_NOFOLLOW) ? 0 : HP_FOLLOW)
/* HP_EXISTS where the kernel would find nothing wrong with the other arguments before the path: a
 * missing name is then the call's ENOENT (flags the kernel does not know: left to it) */
#define LOOKS(ok) ((ok) ? HP_EXISTS : 0)
#define STAT_FLAGS (AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH)
#define STAT_LOOK(flags) (AT_FOLLOW(flags) | LOOKS(!((flags) & ~STAT_FLAGS)))
#define STATX_SYNC (AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC)
#define STATX_LOOK(flags, mask)                                                                    \
    (AT_FOLLOW(flags) | LOOKS(!((flags) & ~(STAT_FLAGS | STATX_SYNC)) &&                           \
                              ((flags) & STATX_SYNC) != STATX_SYNC && !((mask) & 0x80000000U)))
#define ACCESS_LOOK(mode) (HP_FOLLOW | LOOKS(!((mode) & ~(R_OK | W_OK | X_OK))))
#define FACCESSAT_LOOK(mode, flags)                                                                \
    (AT_FOLLOW(flags) | LOOKS(!((mode) & ~(R_OK | W_OK | X_OK)) &&                                \
                              !((flags) & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))))

/* The stat family: the kernel's answer with the owners the container shows (identity.c). */
#define SHOWN(call, show, st)                                                                      \
    int rc_ = (call);                                                                              \
    if (rc_ == 0)                                                                                  \
        show((void *)(st));                                                                        \
    return rc_;

#define WS1(name, follow, params, args)                                                            \
    WRAP int name params                                                                           \
    {                                                                                              \
        TR(p_, AT_FDCWD, path, follow, -1)                                                         \
        SHOWN(REAL(name) args, hp_show_stat, st)                                                   \
    }

#define WSAT(name, follow, params, args, show)                                                     \
    WRAP int name params                                                                           \
    {                                                                                              \
        TR(p_, dirfd, path, follow, -1)                                                            \
        SHOWN(REAL(name) args, show, st)                                                           \
    }

#define WSFD(name, params, args)                                                                   \
    WRAP int name params                                                                           \
    {                                                                                              \
        SHOWN(REAL(name) args, hp_show_stat, st)                                                   \
    }

static bool writes(int flags)
{
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

static int open_follow(int flags, const char *path)
{
    size_t n = path ? strlen(path) : 0;

    if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
        return HP_PARENT; /* the final name is created, never followed */
    if ((flags & O_CREAT) && n > 0 && path[n - 1] == '/')
        return HP_PARENT; /* kept as written: the kernel's EISDIR once the directory part resolves */
    if (flags & O_NOFOLLOW)
        return 0;
    return HP_FOLLOW;
}

static bool needs_mode(int flags)
{
#ifdef O_TMPFILE
    if ((flags & O_TMPFILE) == O_TMPFILE)
        return true;
#endif
    return (flags & O_CREAT) != 0;
}

/* openat's translation, with a fast path: a plain name relative to a real directory is opened
 * with O_NOFOLLOW first; only a symlink (ELOOP, or ENOTDIR with O_DIRECTORY) needs the guest's view
 * of its target. */
static int open_at(int (*real)(int, const char *, int, ...), int dirfd, const char *path, int flags,
                   mode_t mode)
{
    char buf[PATH_MAX];
    const char *p;
    int follow = open_follow(flags, path) | (writes(flags) ? HP_WRITE : 0);
    const struct hp_config *c = hp_conf();

    if (c && !hp_null(path) && path[0] && path[0] != '/' && hp_plain_name(c, path) &&
        (follow & HP_FOLLOW) && !(flags & O_PATH) &&
        !((follow & HP_WRITE) && c->n_ro)) {
        int fd = real(dirfd, path, flags | O_NOFOLLOW, mode);

        /* a symlink gives ELOOP, or ENOTDIR with O_DIRECTORY (O_NOFOLLOW stops at the link) */
        if (fd >= 0 || (errno != ELOOP && !(errno == ENOTDIR && (flags & O_DIRECTORY))))
            return fd;
        follow |= HP_NOFAST; /* a symlink: resolve it as the guest sees it */
    }
    p = hp_path(dirfd, path, follow, buf);
    if (!p)
        return -1;
    return real(dirfd, p, flags, mode);
}

static int fopen_writes(const char *mode)
{
    return mode && (mode[0] != 'r' || strchr(mode, '+')) ? HP_WRITE : 0;
}

#define OPEN_MODE(flags, mode)                                                                     \
    mode_t mode = 0;                                                                               \
    if (needs_mode(flags)) {                                                                       \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = (mode_t)va_arg(ap, int);                                                            \
        va_end(ap);                                                                                \
    }

WRAP int openat(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    return open_at(REAL(openat), dirfd, path, flags, mode);
}

WRAP int open(const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    return open_at(REAL(openat), AT_FDCWD, path, flags, mode);
}

WRAP int creat(const char *path, mode_t mode)
{
    return open_at(REAL(openat), AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

#ifdef __GLIBC__
WRAP int open64(const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    return open_at(REAL(openat64), AT_FDCWD, path, flags, mode);
}

WRAP int openat64(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    return open_at(REAL(openat64), dirfd, path, flags, mode);
}

WRAP int creat64(const char *path, mode_t mode)
{
    return open_at(REAL(openat64), AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* The _FORTIFY_SOURCE entry points: glibc's call its internal open, never ours. */
WRAP int __open_2(const char *path, int flags)
{
    return open_at(REAL(openat), AT_FDCWD, path, flags, 0);
}

WRAP int __open64_2(const char *path, int flags)
{
    return open_at(REAL(openat64), AT_FDCWD, path, flags, 0);
}

WRAP int __openat_2(int dirfd, const char *path, int flags)
{
    return open_at(REAL(openat), dirfd, path, flags, 0);
}

WRAP int __openat64_2(int dirfd, const char *path, int flags)
{
    return open_at(REAL(openat64), dirfd, path, flags, 0);
}

W1(FILE *, fopen64, HP_FOLLOW | fopen_writes(mode), NULL, (const char *path, const char *mode),
   (p_, mode))
W1(FILE *, freopen64, HP_FOLLOW | fopen_writes(mode), NULL,
   (const char *path, const char *mode, FILE *stream), (p_, mode, stream))
#endif

W1(FILE *, fopen, HP_FOLLOW | fopen_writes(mode), NULL, (const char *path, const char *mode),
   (p_, mode))
W1(FILE *, freopen, HP_FOLLOW | fopen_writes(mode), NULL,
   (const char *path, const char *mode, FILE *stream), (p_, mode, stream))

/* ---- stat ----------------------------------------------------------------------------------- */
WS1(stat, HP_FOLLOW | HP_EXISTS, (const char *path, struct stat *st), (p_, st))
WS1(lstat, 0, (const char *path, struct stat *st), (p_, st))
WSAT(fstatat, STAT_LOOK(flags), (int dirfd, const char *path, struct stat *st, int flags),
     (dirfd, p_, st, flags), hp_show_stat)
WSFD(fstat, (int fd, struct stat *st), (fd, st))
W1(int, statfs, HP_FOLLOW | HP_EXISTS, -1, (const char *path, struct statfs *st), (p_, st))
W1(int, statvfs, HP_FOLLOW | HP_EXISTS, -1, (const char *path, struct statvfs *st), (p_, st))

#ifdef __GLIBC__
WS1(stat64, HP_FOLLOW | HP_EXISTS, (const char *path, struct stat64 *st), (p_, st))
WS1(lstat64, 0, (const char *path, struct stat64 *st), (p_, st))
WSAT(fstatat64, STAT_LOOK(flags), (int dirfd, const char *path, struct stat64 *st, int flags),
     (dirfd, p_, st, flags), hp_show_stat)
WSFD(fstat64, (int fd, struct stat64 *st), (fd, st))
W1(int, statfs64, HP_FOLLOW | HP_EXISTS, -1, (const char *path, struct statfs64 *st), (p_, st))
W1(int, statvfs64, HP_FOLLOW | HP_EXISTS, -1, (const char *path, struct statvfs64 *st), (p_, st))
WSAT(statx, STATX_LOOK(flags, mask), (int dirfd, const char *path, int flags, unsigned int mask, struct statx *st),
     (dirfd, p_, flags, mask, st), hp_show_statx)

/* Before glibc 2.33, stat() and friends were inline calls of these versioned symbols. */
int __xstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
int __xmknod(int ver, const char *path, mode_t mode, dev_t *dev);
int __xmknodat(int ver, int dirfd, const char *path, mode_t mode, dev_t *dev);

int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
WS1(__xstat, HP_FOLLOW, (int ver, const char *path, struct stat *st), (ver, p_, st))
WS1(__lxstat, 0, (int ver, const char *path, struct stat *st), (ver, p_, st))
WSAT(__fxstatat, AT_FOLLOW(flags), (int ver, int dirfd, const char *path, struct stat *st, int flags),
     (ver, dirfd, p_, st, flags), hp_show_stat)
WS1(__xstat64, HP_FOLLOW, (int ver, const char *path, struct stat64 *st), (ver, p_, st))
WS1(__lxstat64, 0, (int ver, const char *path, struct stat64 *st), (ver, p_, st))
WSAT(__fxstatat64, AT_FOLLOW(flags), (int ver, int dirfd, const char *path, struct stat64 *st, int flags),
     (ver, dirfd, p_, st, flags), hp_show_stat)
WSFD(__fxstat, (int ver, int fd, struct stat *st), (ver, fd, st))
WSFD(__fxstat64, (int ver, int fd, struct stat64 *st), (ver, fd, st))
/* mknod of glibc < 2.33 programs: the same rules as mknod (hp_mknod) */
WRAP int __xmknod(int ver, const char *path, mode_t mode, dev_t *dev)
{
    TR(p_, AT_FDCWD, path, HP_PARENT | HP_WRITE, -1)
    return hp_mknod(REAL(__xmknod)(ver, p_, mode, dev), AT_FDCWD, p_, mode, dev ? *dev : 0);
}

WRAP int __xmknodat(int ver, int dirfd, const char *path, mode_t mode, dev_t *dev)
{
    TR(p_, dirfd, path, HP_PARENT | HP_WRITE, -1)
    return hp_mknod(REAL(__xmknodat)(ver, dirfd, p_, mode, dev), dirfd, p_, mode, dev ? *dev : 0);
}
W1(int, truncate64, HP_FOLLOW | HP_WRITE, -1, (const char *path, off64_t length), (p_, length))
W1(int, euidaccess, ACCESS_LOOK(mode), -1, (const char *path, int mode), (p_, mode))
W1(int, eaccess, ACCESS_LOOK(mode), -1, (const char *path, int mode), (p_, mode))
#endif

/* ---- access, create, remove, rename --------------------------------------------------------- */
W1(int, access, ACCESS_LOOK(mode), -1, (const char *path, int mode), (p_, mode))
WAT(int, faccessat, FACCESSAT_LOOK(mode, flags), -1, (int dirfd, const char *path, int mode, int flags),
    (dirfd, p_, mode, flags))
W1(int, mkdir, HP_PARENT | HP_WRITE, -1, (const char *path, mode_t mode), (p_, mode))
WAT(int, mkdirat, HP_PARENT | HP_WRITE, -1, (int dirfd, const char *path, mode_t mode), (dirfd, p_, mode))
WRAP int rmdir(const char *path)
{
    int rc;
    TR(p_, AT_FDCWD, path, HP_RMDIR | HP_WRITE, -1)
    unsigned long long id_[2];
    bool forget_ = hp_forget_prepare(AT_FDCWD, p_, id_);

    rc = REAL(rmdir)(p_);
    if (rc == 0 && forget_)
        hp_forget_done(id_);
    hp_invalidate();
    return rc;
}
WRAP int unlink(const char *path)
{
    int rc;
    TR(p_, AT_FDCWD, path, HP_UNLINK | HP_WRITE, -1)
    unsigned long long id_[2];
    bool forget_ = hp_forget_prepare(AT_FDCWD, p_, id_);

    rc = REAL(unlink)(p_);
    if (rc == 0 && forget_)
        hp_forget_done(id_);
    hp_invalidate();
    return rc;
}
WRAP int unlinkat(int dirfd, const char *path, int flags)
{
    int rc;
    TR(p_, dirfd, path, ((flags & AT_REMOVEDIR) ? HP_RMDIR : HP_UNLINK) | HP_WRITE, -1)
    unsigned long long id_[2];
    bool forget_ = hp_forget_prepare(dirfd, p_, id_);

    rc = REAL(unlinkat)(dirfd, p_, flags);
    if (rc == 0 && forget_)
        hp_forget_done(id_);
    hp_invalidate();
    return rc;
}
WRAP int remove(const char *path)
{
    int rc;
    TR(p_, AT_FDCWD, path, HP_RENAME | HP_WRITE, -1)
    unsigned long long id_[2];
    bool forget_ = hp_forget_prepare(AT_FDCWD, p_, id_);

    rc = REAL(remove)(p_);
    if (rc == 0 && forget_)
        hp_forget_done(id_);
    hp_invalidate();
    return rc;
}
WRAP int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
    TR(p_, dirfd, path, HP_PARENT | HP_WRITE, -1)
    return hp_mknod(REAL(mknodat)(dirfd, p_, mode, dev), dirfd, p_, mode, dev);
}

WRAP int mknod(const char *path, mode_t mode, dev_t dev)
{
    TR(p_, AT_FDCWD, path, HP_PARENT | HP_WRITE, -1)
    return hp_mknod(REAL(mknod)(p_, mode, dev), AT_FDCWD, p_, mode, dev);
}
W1(int, mkfifo, HP_PARENT | HP_WRITE, -1, (const char *path, mode_t mode), (p_, mode))
WAT(int, mkfifoat, HP_PARENT | HP_WRITE, -1, (int dirfd, const char *path, mode_t mode), (dirfd, p_, mode))

WRAP int symlink(const char *target, const char *path)
{
    TR(p_, AT_FDCWD, path, HP_PARENT | HP_WRITE, -1)
    return REAL(symlink)(target, p_); /* the target stays a guest path, as the link stores it */
}

WRAP int symlinkat(const char *target, int dirfd, const char *path)
{
    TR(p_, dirfd, path, HP_PARENT | HP_WRITE, -1)
    return REAL(symlinkat)(target, dirfd, p_);
}

WRAP int link(const char *old, const char *new)
{
    TR(o_, AT_FDCWD, old, 0, -1)
    TR_LINK_NEW(n_, AT_FDCWD, new, AT_FDCWD, o_, AT_SYMLINK_NOFOLLOW)
    MOVE_CHECK(AT_FDCWD, old, AT_FDCWD, new, n_, GP_MOVE_LINK, 0, 0);
    return REAL(link)(o_, n_);
}

WRAP int linkat(int olddirfd, const char *old, int newdirfd, const char *new, int flags)
{
    TR(o_, olddirfd, old, (flags & AT_SYMLINK_FOLLOW) ? HP_FOLLOW : 0, -1)
    TR_LINK_NEW(n_, newdirfd, new, olddirfd, o_, (flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW)
    MOVE_CHECK(olddirfd, old, newdirfd, new, n_, GP_MOVE_LINK, (flags & AT_SYMLINK_FOLLOW) ? HP_FOLLOW : 0, flags);
    if (!*old && (flags & AT_EMPTY_PATH) && olddirfd >= 0 && hp_fake_euid() == 0) {
        /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, which an emulated root lacks: the same link
         * through /proc/self/fd/N, followed, needs no capability */
        char proc_fd[64];

        snprintf(proc_fd, sizeof(proc_fd), "/proc/self/fd/%d", olddirfd);
        return REAL(linkat)(AT_FDCWD, proc_fd, newdirfd, n_, AT_SYMLINK_FOLLOW);
    }
    return REAL(linkat)(olddirfd, o_, newdirfd, n_, flags);
}

WRAP int rename(const char *old, const char *new)
{
    TR(o_, AT_FDCWD, old, HP_PARENT | HP_MOVE, -1)
    TR(n_, AT_FDCWD, new, HP_PARENT | HP_MOVE, -1)
    MOVE_CHECK(AT_FDCWD, old, AT_FDCWD, new, n_, GP_MOVE_RENAME, 0, 0);
    unsigned long long id_[2];
    bool forget_ = hp_forget_prepare(AT_FDCWD, n_, id_);
    int rc = REAL(rename)(o_, n_);

    if (rc == 0 && forget_)
        hp_forget_done(id_);

    hp_invalidate();
    return rc;
}

WRAP int renameat(int olddirfd, const char *old, int newdirfd, const char *new)
{
    TR(o_, olddirfd, old, HP_PARENT | HP_MOVE, -1)
    TR(n_, newdirfd, new, HP_PARENT | HP_MOVE, -1)
    MOVE_CHECK(olddirfd, old, newdirfd, new, n_, GP_MOVE_RENAME, 0, 0);
    unsigned long long id_[2];
    bool forget_ = hp_forget_prepare(newdirfd, n_, id_);
    int rc = REAL(renameat)(olddirfd, o_, newdirfd, n_);

    if (rc == 0 && forget_)
        hp_forget_done(id_);

    hp_invalidate();
    return rc;
}

#ifdef __GLIBC__
WRAP int renameat2(int olddirfd, const char *old, int newdirfd, const char *new, unsigned flags)
{
    TR(o_, olddirfd, old, HP_PARENT | HP_MOVE, -1)
    TR(n_, newdirfd, new, HP_PARENT | HP_MOVE, -1)
    MOVE_CHECK(olddirfd, old, newdirfd, new, n_, GP_MOVE_RENAME, 0, flags);
    unsigned long long id_[2];
    bool forget_ = !(flags & RENAME_EXCHANGE) && hp_forget_prepare(newdirfd, n_, id_);
    int rc = REAL(renameat2)(olddirfd, o_, newdirfd, n_, flags);

    if (rc == 0 && forget_)
        hp_forget_done(id_);

    hp_invalidate();
    return rc;
}
#endif

/* ---- permissions, owners (identity.c decides about chown), times, size ---------------------- */
W1(int, chmod, HP_FOLLOW | HP_WRITE, -1, (const char *path, mode_t mode), (p_, mode))
WAT(int, fchmodat, AT_FOLLOW(flags) | HP_WRITE, -1, (int dirfd, const char *path, mode_t mode, int flags),
    (dirfd, p_, mode, flags))
W1(int, truncate, HP_FOLLOW | HP_WRITE, -1, (const char *path, off_t length), (p_, length))
W1(int, utime, HP_FOLLOW | HP_WRITE, -1, (const char *path, const struct utimbuf *times), (p_, times))
W1(int, utimes, HP_FOLLOW | HP_WRITE, -1, (const char *path, const struct timeval times[2]), (p_, times))
W1(int, lutimes, 0 | HP_WRITE, -1, (const char *path, const struct timeval times[2]), (p_, times))
WAT(int, futimesat, HP_FOLLOW | HP_WRITE, -1, (int dirfd, const char *path, const struct timeval times[2]),
    (dirfd, p_, times))
WRAP int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
{
    if (hp_null(path)) /* futimens(fd) as the kernel allows it */
        return REAL(utimensat)(dirfd, path, times, flags);
    TR(p_, dirfd, path, AT_FOLLOW(flags) | HP_WRITE, -1)
    return REAL(utimensat)(dirfd, p_, times, flags);
}

/* ---- watched and queried paths -------------------------------------------------------------- */
W1(long, pathconf, HP_FOLLOW, -1, (const char *path, int name), (p_, name))

WRAP int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
    TR(p_, AT_FDCWD, path, (mask & IN_DONT_FOLLOW) ? 0 : HP_FOLLOW, -1)
    return REAL(inotify_add_watch)(fd, p_, mask);
}

/* ---- extended attributes -------------------------------------------------------------------- */
W1(ssize_t, getxattr, HP_FOLLOW, -1, (const char *path, const char *name, void *value, size_t size),
   (p_, name, value, size))
W1(ssize_t, lgetxattr, 0, -1, (const char *path, const char *name, void *value, size_t size),
   (p_, name, value, size))
W1(int, setxattr, HP_FOLLOW | HP_WRITE, -1,
   (const char *path, const char *name, const void *value, size_t size, int flags),
   (p_, name, value, size, flags))
W1(int, lsetxattr, 0 | HP_WRITE, -1,
   (const char *path, const char *name, const void *value, size_t size, int flags),
   (p_, name, value, size, flags))
W1(ssize_t, listxattr, HP_FOLLOW, -1, (const char *path, char *list, size_t size), (p_, list, size))
W1(ssize_t, llistxattr, 0, -1, (const char *path, char *list, size_t size), (p_, list, size))
W1(int, removexattr, HP_FOLLOW | HP_WRITE, -1, (const char *path, const char *name), (p_, name))
W1(int, lremovexattr, 0 | HP_WRITE, -1, (const char *path, const char *name), (p_, name))

/* ftw/nftw (and glibc's ftw64/nftw64): libc's own walk opens and stats paths internally, never
 * through the wrappers, so they are walked here with the wrapped opendir/stat/lstat, and the
 * callback gets the guest paths it passed in. FTW_PHYS, FTW_MOUNT, FTW_DEPTH, FTW_CHDIR (each directory's entries
 * are handled with it as the cwd; the callback of a directory itself runs in its parent, as glibc)
 * and FTW_ACTIONRETVAL (glibc) are honoured. Entries come in readdir order, as libc's. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload.h"

#ifndef FTW_ACTIONRETVAL
#define FTW_ACTIONRETVAL 0
#define FTW_SKIP_SUBTREE 2
#define FTW_SKIP_SIBLINGS 3
#endif

typedef int (*hp_nftw_fn)(const char *, const struct stat *, int, struct FTW *);
typedef int (*hp_ftw_fn)(const char *, const struct stat *, int);

struct seen { /* directories entered, by (dev, ino): glibc's walk enters each once */
    dev_t dev;
    ino_t ino;
};

struct walk {
    hp_nftw_fn nfn;
    hp_ftw_fn fn;
    int flags;
    dev_t dev;
    struct seen *seen; /* open addressing, size a power of two; NULL: not tracked */
    size_t n_seen, cap_seen;
    char path[PATH_MAX]; /* the guest path handed to the callback */
};

#ifdef __GLIBC__
static size_t seen_slot(const struct seen *v, size_t cap, dev_t dev, ino_t ino)
{
    size_t i = (size_t)(ino * 0x9e3779b97f4a7c15ull ^ dev) & (cap - 1);

    while ((v[i].dev || v[i].ino) && (v[i].dev != dev || v[i].ino != ino))
        i = (i + 1) & (cap - 1);
    return i;
}

/* Remember the directory st; 1 when it was entered before, 0 new, -1 out of memory. */
static int seen_before(struct walk *w, const struct stat *st)
{
    size_t i;

    if (2 * (w->n_seen + 1) > w->cap_seen) {
        size_t cap = w->cap_seen ? 2 * w->cap_seen : 64;
        struct seen *v = calloc(cap, sizeof(*v));

        if (!v)
            return -1;
        for (size_t k = 0; k < w->cap_seen; k++) {
            if (w->seen[k].dev || w->seen[k].ino)
                v[seen_slot(v, cap, w->seen[k].dev, w->seen[k].ino)] = w->seen[k];
        }
        free(w->seen);
        w->seen = v;
        w->cap_seen = cap;
    }
    i = seen_slot(w->seen, w->cap_seen, st->st_dev, st->st_ino);
    if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino &&
        (st->st_dev || st->st_ino))
        return 1;
    w->seen[i].dev = st->st_dev;
    w->seen[i].ino = st->st_ino;
    w->n_seen++;
    return 0;
}
#endif

static int call(const struct walk *w, const struct stat *st, int type, struct FTW *ftw)
{
    if (w->nfn)
        return w->nfn(w->path, st, type, ftw);
#ifdef __GLIBC__
    /* ftw's types, as glibc's: no FTW_DP, FTW_SL or FTW_SLN there (musl's ftw is nftw with
     * FTW_PHYS and keeps its types) */
    if (type == FTW_DP)
        type = FTW_D;
    else if (type == FTW_SL)
        type = FTW_F;
    else if (type == FTW_SLN)
        type = FTW_NS;
#endif
    return w->fn(w->path, st, type);
}

static int walk_dir(struct walk *w, const char *access, size_t len, int level, struct stat *st,
                    struct FTW *ftw);

/* The entry w->path (len bytes; `access` is how to reach it: the same path, or its name
 * relative to the cwd with FTW_CHDIR). */
static int walk_entry(struct walk *w, const char *access, size_t len, int level)
{
    struct stat st;
    struct FTW ftw;
    const char *base = strrchr(w->path, '/');
    bool phys = (w->flags & FTW_PHYS) != 0;
    int rc;

    ftw.level = level;
    ftw.base = base && base[1] ? (int)(base - w->path + 1) : 0;
    if ((phys ? hp_stat(access, &st, false) : hp_stat(access, &st, true)) < 0) {
        if (!phys && errno == ENOENT && hp_stat(access, &st, false) == 0 && S_ISLNK(st.st_mode))
            return call(w, &st, FTW_SLN, &ftw);
        if (level == 0)
            return -1;
        memset(&st, 0, sizeof(st));
        return call(w, &st, FTW_NS, &ftw);
    }
    if (level > 0 && (w->flags & FTW_MOUNT) && st.st_dev != w->dev)
        return 0;
    if (S_ISLNK(st.st_mode))
        rc = call(w, &st, FTW_SL, &ftw);
    else if (!S_ISDIR(st.st_mode))
        rc = call(w, &st, FTW_F, &ftw);
    else {
#ifdef __GLIBC__
        if (!(w->flags & FTW_PHYS)) { /* a directory reached again through a symlink: skipped */
            int again = seen_before(w, &st);

            if (again)
                return again < 0 ? -1 : 0;
        }
#endif
        rc = walk_dir(w, access, len, level, &st, &ftw);
    }
    return (w->flags & FTW_ACTIONRETVAL) && rc == FTW_SKIP_SUBTREE ? 0 : rc;
}

static int walk_dir(struct walk *w, const char *access, size_t len, int level, struct stat *st,
                    struct FTW *ftw)
{
    bool chdir_each = (w->flags & FTW_CHDIR) != 0;
    DIR *dir = opendir(access);
    int back = -1, rc = 0;

    if (!(w->flags & FTW_DEPTH) || !dir) {
        rc = call(w, st, dir ? FTW_D : FTW_DNR, ftw);
        if ((w->flags & FTW_ACTIONRETVAL) && rc == FTW_SKIP_SUBTREE)
            rc = 0;
        else if (!rc && dir)
            goto entries;
        if (dir)
            closedir(dir);
        return rc;
    }
entries:
    if (chdir_each) {
        back = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (back < 0 || fchdir(dirfd(dir)) < 0) {
            rc = -1;
            goto out;
        }
    }
    for (struct dirent *e; (e = readdir(dir));) {
        size_t n = strlen(e->d_name);
        size_t at = (len && w->path[len - 1] == '/') ? len : len + 1;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (at + n + 1 > sizeof(w->path)) {
            errno = ENAMETOOLONG;
            rc = -1;
            break;
        }
        w->path[at - 1] = '/';
        memcpy(w->path + at, e->d_name, n + 1);
        rc = walk_entry(w, chdir_each ? w->path + at : w->path, at + n, level + 1);
        w->path[len] = '\0';
        if (rc)
            break;
    }
out:
    if ((w->flags & FTW_ACTIONRETVAL) && rc == FTW_SKIP_SIBLINGS)
        rc = 0;
    if (!rc && (w->flags & FTW_DEPTH)) /* as glibc: still in the directory with FTW_CHDIR */
        rc = call(w, st, FTW_DP, ftw);
    if (back >= 0) {
        if (fchdir(back) < 0 && !rc)
            rc = -1;
        close(back);
    }
    closedir(dir);
    return rc;
}

static int walk_start(struct walk *w, const char *dirpath)
{
    size_t len = strlen(dirpath);
    const char *access = w->path;
    struct stat st;
    int back = -1, rc;

    if (len == 0) {
        errno = ENOENT;
        return -1;
    }
    if (len >= sizeof(w->path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(w->path, dirpath, len + 1);
    if (hp_stat(w->path, &st, true) == 0)
        w->dev = st.st_dev;
    if (w->flags & FTW_CHDIR) { /* the root's callback runs in its parent directory */
        char *slash = strrchr(w->path, '/');

        back = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (back < 0)
            return -1;
        if (slash && slash[1]) {
            int ok;

            *slash = '\0';
            ok = chdir(slash == w->path ? "/" : w->path);
            *slash = '/';
            if (ok < 0) {
                close(back);
                return -1;
            }
            access = slash + 1;
        }
    }
    rc = walk_entry(w, access, len, 0);
    if (back >= 0) {
        int err = errno;

        if (fchdir(back) < 0 && !rc)
            rc = -1;
        else
            errno = err;
        close(back);
    }
    if ((w->flags & FTW_ACTIONRETVAL) && (rc == FTW_SKIP_SUBTREE || rc == FTW_SKIP_SIBLINGS))
        rc = 0;
    return rc;
}

static int hp_nftw(const char *dirpath, hp_nftw_fn fn, int flags)
{
    struct walk *w = malloc(sizeof(*w));
    int rc;

    if (!w)
        return -1;
    memset(w, 0, sizeof(*w));
    w->nfn = fn;
    w->flags = flags;
    rc = walk_start(w, dirpath);
    free(w->seen);
    free(w);
    return rc;
}

static int hp_ftw(const char *dirpath, hp_ftw_fn fn)
{
    struct walk *w = malloc(sizeof(*w));
    int rc;

    if (!w)
        return -1;
    memset(w, 0, sizeof(*w));
    w->fn = fn;
#ifndef __GLIBC__
    w->flags = FTW_PHYS; /* musl's ftw */
#endif
    rc = walk_start(w, dirpath);
    free(w->seen);
    free(w);
    return rc;
}

WRAP int nftw(const char *dirpath, hp_nftw_fn fn, int nopenfd, int flags)
{
    if (!hp_conf())
        return REAL(nftw)(dirpath, fn, nopenfd, flags);
    return hp_nftw(dirpath, fn, flags);
}

WRAP int ftw(const char *dirpath, hp_ftw_fn fn, int nopenfd)
{
    if (!hp_conf())
        return REAL(ftw)(dirpath, fn, nopenfd);
    return hp_ftw(dirpath, fn);
}

#ifdef __GLIBC__
/* _FILE_OFFSET_BITS=64 programs call these; on 64-bit struct stat64 is struct stat. */
WRAP int nftw64(const char *dirpath, __nftw64_func_t fn, int nopenfd, int flags)
{
    if (!hp_conf())
        return REAL(nftw64)(dirpath, fn, nopenfd, flags);
    return hp_nftw(dirpath, (hp_nftw_fn)fn, flags);
}

WRAP int ftw64(const char *dirpath, __ftw64_func_t fn, int nopenfd)
{
    if (!hp_conf())
        return REAL(ftw64)(dirpath, fn, nopenfd);
    return hp_ftw(dirpath, (hp_ftw_fn)fn);
}
#endif

/* Directory functions whose libc implementations open paths internally (never through our
 * wrappers): opendir, scandir, glob (through GLOB_ALTDIRFUNC), ftw/nftw (walked here). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload.h"

WRAP DIR *opendir(const char *path)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_FOLLOW, buf);

    if (!p)
        return NULL;
    return REAL(opendir)(p);
}

typedef int (*hp_filter)(const struct dirent *);
typedef int (*hp_compar)(const struct dirent **, const struct dirent **);

WRAP int scandir(const char *path, struct dirent ***list, hp_filter filter, hp_compar compar)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_FOLLOW, buf);

    if (!p)
        return -1;
    return REAL(scandir)(p, list, filter, compar);
}

#ifdef __GLIBC__
typedef int (*hp_filter64)(const struct dirent64 *);
typedef int (*hp_compar64)(const struct dirent64 **, const struct dirent64 **);

WRAP int scandir64(const char *path, struct dirent64 ***list, hp_filter64 filter, hp_compar64 compar)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_FOLLOW, buf);

    if (!p)
        return -1;
    return REAL(scandir64)(p, list, filter, compar);
}
#endif

#ifdef GLOB_ALTDIRFUNC /* glibc; musl's glob has no such hook and works on host paths */
static void *glob_opendir(const char *path)
{
    return opendir(path);
}

static void *glob_readdir(void *dir)
{
    return readdir((DIR *)dir);
}

static void glob_closedir(void *dir)
{
    closedir((DIR *)dir);
}

#endif

WRAP int glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *pglob)
{
    if (!hp_conf())
        return REAL(glob)(pattern, flags, errfunc, pglob);
#ifdef GLOB_ALTDIRFUNC
    if (!(flags & GLOB_ALTDIRFUNC)) {
        /* Our opendir/stat/lstat translate; glob itself keeps working on guest paths. */
        pglob->gl_opendir = glob_opendir;
        pglob->gl_readdir = (__typeof__(pglob->gl_readdir))glob_readdir;
        pglob->gl_closedir = glob_closedir;
        pglob->gl_stat = (__typeof__(pglob->gl_stat))stat;
        pglob->gl_lstat = (__typeof__(pglob->gl_lstat))lstat;
        flags |= GLOB_ALTDIRFUNC;
    }
#endif
    return REAL(glob)(pattern, flags, errfunc, pglob);
}

#ifdef __GLIBC__
static void *glob_readdir64(void *dir)
{
    return readdir64((DIR *)dir);
}

WRAP int glob64(const char *pattern, int flags, int (*errfunc)(const char *, int), glob64_t *pglob)
{
    if (hp_conf() && !(flags & GLOB_ALTDIRFUNC)) {
        pglob->gl_opendir = glob_opendir;
        pglob->gl_readdir = (__typeof__(pglob->gl_readdir))glob_readdir64;
        pglob->gl_closedir = glob_closedir;
        pglob->gl_stat = (__typeof__(pglob->gl_stat))stat64;
        pglob->gl_lstat = (__typeof__(pglob->gl_lstat))lstat64;
        flags |= GLOB_ALTDIRFUNC;
    }
    return REAL(glob64)(pattern, flags, errfunc, pglob);
}
#endif

/* ---- ftw/nftw: walked here with the wrapped opendir/stat/lstat, so that the callback gets the
 * guest paths it passed in. FTW_CHDIR and FTW_MOUNT are honoured; FTW_ACTIONRETVAL is not. */
typedef int (*hp_nftw_fn)(const char *, const struct stat *, int, struct FTW *);
typedef int (*hp_ftw_fn)(const char *, const struct stat *, int);

struct walk {
    hp_nftw_fn nfn;
    hp_ftw_fn fn;
    int flags;
    dev_t dev;
};

static int call(const struct walk *w, const char *path, const struct stat *st, int type,
                struct FTW *ftw)
{
    return w->nfn ? w->nfn(path, st, type, ftw) : w->fn(path, st, type == FTW_DP ? FTW_D : type);
}

static int walk_tree(const struct walk *w, char *path, size_t len, int level)
{
    struct stat st;
    struct FTW ftw;
    const char *base = strrchr(path, '/');
    int type, rc = 0;
    bool phys = (w->flags & FTW_PHYS) != 0;

    ftw.level = level;
    ftw.base = base && base[1] ? (int)(base - path + 1) : 0;
    if ((phys ? lstat(path, &st) : stat(path, &st)) < 0) {
        if (!phys && errno == ENOENT && lstat(path, &st) == 0)
            return call(w, path, &st, FTW_SLN, &ftw);
        if (level == 0)
            return -1;
        return call(w, path, &st, FTW_NS, &ftw);
    }
    if (level > 0 && (w->flags & FTW_MOUNT) && st.st_dev != w->dev)
        return 0;
    if (S_ISLNK(st.st_mode))
        return call(w, path, &st, w->nfn ? FTW_SL : FTW_F, &ftw);
    if (!S_ISDIR(st.st_mode))
        return call(w, path, &st, FTW_F, &ftw);
    DIR *dir = opendir(path);
    type = dir ? FTW_D : FTW_DNR;
    if (!(w->flags & FTW_DEPTH) || !dir) {
        rc = call(w, path, &st, type, &ftw);
        if (rc || !dir) {
            if (dir)
                closedir(dir);
            return rc;
        }
    }
    for (struct dirent *e; (e = readdir(dir));) {
        size_t n = strlen(e->d_name);

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (len + 1 + n + 1 > PATH_MAX) {
            errno = ENAMETOOLONG;
            rc = -1;
            break;
        }
        path[len] = (len && path[len - 1] == '/') ? '\0' : '/';
        size_t at = path[len] ? len + 1 : len;
        memcpy(path + at, e->d_name, n + 1);
        rc = walk_tree(w, path, at + n, level + 1);
        path[len] = '\0';
        if (rc)
            break;
    }
    closedir(dir);
    if (!rc && (w->flags & FTW_DEPTH))
        rc = call(w, path, &st, FTW_DP, &ftw);
    return rc;
}

static int walk_start(struct walk *w, const char *dirpath)
{
    char path[PATH_MAX];
    size_t len = strlen(dirpath);
    struct stat st;

    if (len == 0) {
        errno = ENOENT;
        return -1;
    }
    if (len >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dirpath, len + 1);
    if (stat(path, &st) == 0)
        w->dev = st.st_dev;
    return walk_tree(w, path, len, 0);
}

WRAP int nftw(const char *dirpath, hp_nftw_fn fn, int nopenfd, int flags)
{
    struct walk w = {.nfn = fn, .flags = flags};

#ifndef FTW_ACTIONRETVAL
#define FTW_ACTIONRETVAL 0
#endif
    if (!hp_conf() || (flags & (FTW_CHDIR | FTW_ACTIONRETVAL)))
        return REAL(nftw)(dirpath, fn, nopenfd, flags);
    return walk_start(&w, dirpath);
}

WRAP int ftw(const char *dirpath, hp_ftw_fn fn, int nopenfd)
{
    struct walk w = {.fn = fn, .flags = FTW_PHYS * 0};

    if (!hp_conf())
        return REAL(ftw)(dirpath, fn, nopenfd);
    return walk_start(&w, dirpath);
}

/* Directory functions whose libc implementations open paths internally (never through our
 * wrappers): opendir, scandir, glob (glibc: through GLOB_ALTDIRFUNC; musl: globbed here),
 * ftw/nftw (walked here). fts is in fts.c. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload.h"

int hp_sys_fstatat(int dirfd, const char *path, struct stat *st, int flags); /* sys.c */

int hp_stat(const char *path, struct stat *st, bool follow)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, follow ? HP_FOLLOW : 0, buf);

    if (!p)
        return -1;
    return hp_sys_fstatat(AT_FDCWD, p, st, follow ? 0 : AT_SYMLINK_NOFOLLOW);
}

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

static int glob_stat(const char *path, void *st)
{
    return hp_stat(path, st, true);
}

static int glob_lstat(const char *path, void *st)
{
    return hp_stat(path, st, false);
}

#else
/* musl's glob reads directories inside libc: with no GLOB_ALTDIRFUNC hook, the library globs
 * itself (musl's flags but GLOB_TILDE*, which go to musl's glob), with the wrapped
 * opendir/lstat/stat, and frees the result in its globfree. */
struct gmatches {
    char **v;
    size_t n, cap;
};

struct gctx {
    int flags;
    int (*errfunc)(const char *, int);
    struct gmatches *out;
    char path[PATH_MAX];
};

static int gadd(struct gmatches *m, const char *path, size_t extra)
{
    size_t len = strlen(path);
    char *copy;

    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        char **v = realloc(m->v, cap * sizeof(*v));

        if (!v)
            return GLOB_NOSPACE;
        m->v = v;
        m->cap = cap;
    }
    copy = malloc(len + extra + 1);
    if (!copy)
        return GLOB_NOSPACE;
    memcpy(copy, path, len + 1);
    m->v[m->n++] = copy;
    return 0;
}

static bool gmagic(const char *s, size_t n, int flags)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '*' || s[i] == '?' || s[i] == '[')
            return true;
        if (s[i] == '\\' && !(flags & GLOB_NOESCAPE) && i + 1 < n)
            i++;
    }
    return false;
}

/* The end of the pattern: ctx->path (len bytes) if it exists, marked with "/" when asked. */
static int gfound(struct gctx *g, size_t len)
{
    struct stat st;
    int rc;

    if (hp_stat(g->path, &st, false) < 0)
        return 0;
    rc = gadd(g->out, g->path, 1);
    if (rc == 0 && (g->flags & GLOB_MARK) && len > 0 && g->path[len - 1] != '/' &&
        (S_ISDIR(st.st_mode) || (S_ISLNK(st.st_mode) && hp_stat(g->path, &st, true) == 0 &&
                                 S_ISDIR(st.st_mode))))
        strcat(g->out->v[g->out->n - 1], "/");
    return rc;
}

/* Match `pat` below ctx->path[0..len). */
static int gwalk(struct gctx *g, size_t len, const char *pat)
{
    const char *end;
    size_t n;
    DIR *dir;
    int rc = 0;

    while (*pat == '/') {
        if (len + 1 >= sizeof(g->path))
            return 0;
        g->path[len++] = '/';
        pat++;
    }
    g->path[len] = '\0';
    if (!*pat)
        return gfound(g, len);
    end = strchr(pat, '/');
    n = end ? (size_t)(end - pat) : strlen(pat);
    if (!gmagic(pat, n, g->flags)) { /* a literal component, unescaped */
        for (size_t i = 0; i < n; i++) {
            if (pat[i] == '\\' && !(g->flags & GLOB_NOESCAPE) && i + 1 < n)
                i++;
            if (len + 1 >= sizeof(g->path))
                return 0;
            g->path[len++] = pat[i];
        }
        g->path[len] = '\0';
        return gwalk(g, len, pat + n);
    }
    {
        char comp[NAME_MAX * 4 + 1];
        int fnflags = FNM_PERIOD | ((g->flags & GLOB_NOESCAPE) ? FNM_NOESCAPE : 0);
        struct dirent *d;

        if (n >= sizeof(comp))
            return 0;
        memcpy(comp, pat, n);
        comp[n] = '\0';
        if (g->flags & GLOB_PERIOD)
            fnflags &= ~FNM_PERIOD;
        dir = opendir(len ? g->path : ".");
        if (!dir) {
            if (errno == ENOENT || errno == ENOTDIR)
                return 0;
            if ((g->errfunc && g->errfunc(len ? g->path : ".", errno)) || (g->flags & GLOB_ERR))
                return GLOB_ABORTED;
            return 0;
        }
        while (rc == 0 && (d = readdir(dir))) {
            size_t dl = strlen(d->d_name);

            if ((g->flags & GLOB_PERIOD) && (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")) &&
                comp[0] != '.')
                continue;
            if (fnmatch(comp, d->d_name, fnflags) != 0 || len + dl + 1 >= sizeof(g->path))
                continue;
            memcpy(g->path + len, d->d_name, dl + 1);
            rc = gwalk(g, len + dl, pat + n);
            g->path[len] = '\0';
        }
        closedir(dir);
    }
    return rc;
}

static int gsort(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int musl_glob(const char *pattern, int flags, int (*errfunc)(const char *, int),
                     glob_t *pglob)
{
    struct gmatches m = {0};
    struct gctx *g;
    size_t offs, old, total;
    char **v;
    int rc;

    if (flags & ~(GLOB_ERR | GLOB_MARK | GLOB_NOSORT | GLOB_DOOFFS | GLOB_NOCHECK | GLOB_APPEND |
                  GLOB_NOESCAPE | GLOB_PERIOD))
        return REAL(glob)(pattern, flags, errfunc, pglob);
    if (!(flags & GLOB_APPEND)) {
        pglob->gl_offs = (flags & GLOB_DOOFFS) ? pglob->gl_offs : 0;
        pglob->gl_pathc = 0;
        pglob->gl_pathv = NULL;
    }
    g = malloc(sizeof(*g));
    if (!g)
        return GLOB_NOSPACE;
    g->flags = flags;
    g->errfunc = errfunc;
    g->out = &m;
    rc = strlen(pattern) < sizeof(g->path) ? gwalk(g, 0, pattern) : 0;
    free(g);
    if (rc == 0 && m.n == 0 && (flags & GLOB_NOCHECK))
        rc = gadd(&m, pattern, 0);
    if (rc == 0 && m.n == 0)
        rc = GLOB_NOMATCH;
    if (rc == 0 && !(flags & GLOB_NOSORT))
        qsort(m.v, m.n, sizeof(*m.v), gsort);
    offs = pglob->gl_offs;
    old = pglob->gl_pathv ? pglob->gl_pathc : 0;
    total = offs + old + m.n + 1;
    v = rc == 0 ? realloc(pglob->gl_pathv, total * sizeof(*v)) : NULL;
    if (rc == 0 && !v)
        rc = GLOB_NOSPACE;
    if (rc != 0) {
        for (size_t i = 0; i < m.n; i++)
            free(m.v[i]);
        free(m.v);
        return rc;
    }
    if (!pglob->gl_pathv) {
        for (size_t i = 0; i < offs; i++)
            v[i] = NULL;
    }
    memcpy(v + offs + old, m.v, m.n * sizeof(*v));
    v[offs + old + m.n] = NULL;
    pglob->gl_pathv = v;
    pglob->gl_pathc = old + m.n;
    free(m.v);
    return 0;
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
        pglob->gl_stat = (__typeof__(pglob->gl_stat))glob_stat;
        pglob->gl_lstat = (__typeof__(pglob->gl_lstat))glob_lstat;
        flags |= GLOB_ALTDIRFUNC;
    }
    return REAL(glob)(pattern, flags, errfunc, pglob);
#else
    return musl_glob(pattern, flags, errfunc, pglob);
#endif
}

#ifndef GLOB_ALTDIRFUNC
WRAP void globfree(glob_t *g)
{
    if (!hp_conf()) {
        REAL(globfree)(g);
        return;
    }
    for (size_t i = 0; g->gl_pathv && i < g->gl_pathc; i++)
        free(g->gl_pathv[g->gl_offs + i]);
    free(g->gl_pathv);
    g->gl_pathc = 0;
    g->gl_pathv = NULL;
}
#endif

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
        pglob->gl_stat = (__typeof__(pglob->gl_stat))glob_stat;
        pglob->gl_lstat = (__typeof__(pglob->gl_lstat))glob_lstat;
        flags |= GLOB_ALTDIRFUNC;
    }
    return REAL(glob64)(pattern, flags, errfunc, pglob);
}
#endif

/* ---- ftw/nftw: walked here with the wrapped opendir/stat/lstat, so that the callback gets the
 * guest paths it passed in. FTW_PHYS, FTW_MOUNT, FTW_DEPTH, FTW_CHDIR (each directory's entries
 * are handled with it as the cwd; the callback of a directory itself runs in its parent, as glibc)
 * and FTW_ACTIONRETVAL (glibc) are honoured. Entries come in readdir order, as libc's. */
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

/* Directory functions whose libc implementations open paths internally (never through our
 * wrappers): opendir, scandir, glob (glibc: through GLOB_ALTDIRFUNC; musl: globbed here).
 * ftw/nftw: ftw.c; fts: fts.c. */
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

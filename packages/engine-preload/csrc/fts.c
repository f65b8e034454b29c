/* glibc's fts_open/fts_read/fts_children/fts_set/fts_close, walked here: libc's own fts opens and
 * stats directories internally (never through our wrappers), so the paths it is given would reach
 * the kernel untranslated. This walk calls the wrapped opendir/stat/lstat with the guest paths,
 * and every entry's fts_path is the guest path built from the argument, as with libc's fts.
 *
 * Differences from glibc (README "Limits"): the walk never changes directory (as with
 * FTS_NOCHDIR: fts_accpath is fts_path, valid from any cwd); FTS_NOSTAT and FTS_NAMEONLY still
 * stat every entry (more information than asked for, never less). musl has no fts. */
#define _GNU_SOURCE
#include <stdlib.h> /* defines __GLIBC__ where it is glibc */
#ifdef __GLIBC__
#include <dirent.h>
#include <errno.h>
#include <fts.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "preload.h"

#if UINTPTR_MAX != 0xffffffffffffffffu
#error "fts.c assumes FTS and FTS64 share one layout (64-bit glibc)"
#endif

#define HP_FTS_STOP 0x10000 /* a fatal error: fts_read returns NULL from now on */

typedef int (*hp_fts_compar)(const FTSENT **, const FTSENT **);

/* One entry: the FTSENT, its stat buffer and its path in one allocation. */
static FTSENT *entry_new(const char *parent_path, const char *name, size_t namelen, short level,
                         FTSENT *parent)
{
    size_t plen = parent_path ? strlen(parent_path) : 0;
    size_t pathlen;
    size_t head = offsetof(FTSENT, fts_name) + namelen + 1;
    FTSENT *e;
    char *path;

    if (plen > 0 && parent_path[plen - 1] == '/')
        plen--;
    pathlen = parent_path ? plen + 1 + namelen : namelen;
    if (pathlen > 0xffff) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    head = (head + _Alignof(struct stat) - 1) & ~(_Alignof(struct stat) - 1);
    e = calloc(1, head + sizeof(struct stat) + pathlen + 1);
    if (!e)
        return NULL;
    memcpy(e->fts_name, name, namelen);
    e->fts_name[namelen] = '\0';
    e->fts_namelen = (unsigned short)namelen;
    e->fts_statp = (struct stat *)((char *)e + head);
    path = (char *)e->fts_statp + sizeof(struct stat);
    if (parent_path) {
        memcpy(path, parent_path, plen);
        path[plen] = '/';
        memcpy(path + plen + 1, name, namelen + 1);
    } else {
        memcpy(path, name, namelen + 1);
    }
    e->fts_path = e->fts_accpath = path;
    e->fts_pathlen = (unsigned short)pathlen;
    e->fts_level = level;
    e->fts_parent = parent;
    return e;
}

static bool is_dot(const char *name)
{
    return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* stat (or lstat) an entry and say what it is, as glibc's fts does. */
static unsigned short entry_stat(const FTS *sp, FTSENT *e, bool follow)
{
    struct stat *st = e->fts_statp;

    if ((sp->fts_options & FTS_LOGICAL) || follow) {
        if (hp_stat(e->fts_accpath, st, true) < 0) {
            int err = errno;

            if (hp_stat(e->fts_accpath, st, false) == 0) {
                errno = 0;
                return FTS_SLNONE;
            }
            e->fts_errno = err;
            memset(st, 0, sizeof(*st));
            return FTS_NS;
        }
    } else if (hp_stat(e->fts_accpath, st, false) < 0) {
        e->fts_errno = errno;
        memset(st, 0, sizeof(*st));
        return FTS_NS;
    }
    if (S_ISDIR(st->st_mode)) {
        e->fts_dev = st->st_dev;
        e->fts_ino = st->st_ino;
        e->fts_nlink = st->st_nlink;
        if (is_dot(e->fts_name))
            return FTS_DOT;
        for (FTSENT *t = e->fts_parent; t && t->fts_level >= FTS_ROOTLEVEL; t = t->fts_parent) {
            if (t->fts_ino == e->fts_ino && t->fts_dev == e->fts_dev) {
                e->fts_cycle = t;
                return FTS_DC;
            }
        }
        return FTS_D;
    }
    if (S_ISLNK(st->st_mode))
        return FTS_SL;
    if (S_ISREG(st->st_mode))
        return FTS_F;
    return FTS_DEFAULT;
}

static void list_free(FTSENT *e)
{
    while (e) {
        FTSENT *next = e->fts_link;

        free(e);
        e = next;
    }
}

/* Sort a linked list with the caller's comparison (qsort over an array of the entries). */
static FTSENT *list_sort(FTSENT *head, size_t n, hp_fts_compar compar)
{
    FTSENT **v;
    size_t i = 0;

    if (!compar || n < 2)
        return head;
    v = malloc(n * sizeof(*v));
    if (!v)
        return head; /* unsorted rather than nothing */
    for (FTSENT *e = head; e; e = e->fts_link)
        v[i++] = e;
    qsort(v, n, sizeof(*v), (int (*)(const void *, const void *))compar);
    for (i = 0; i + 1 < n; i++)
        v[i]->fts_link = v[i + 1];
    v[n - 1]->fts_link = NULL;
    head = v[0];
    free(v);
    return head;
}

/* The children of the directory `cur`; NULL when it has none or cannot be read (then, when
 * reading, cur becomes FTS_DNR or, empty, FTS_DP, as glibc's fts_build). */
static FTSENT *build(FTS *sp, FTSENT *cur, bool reading)
{
    FTSENT *head = NULL, **tail = &head;
    size_t n = 0;
    DIR *dir = opendir(cur->fts_accpath);
    struct dirent *d;

    if (!dir) {
        if (reading) {
            cur->fts_info = FTS_DNR;
            cur->fts_errno = errno;
        }
        return NULL;
    }
    while ((d = readdir(dir))) {
        FTSENT *e;

        if (!(sp->fts_options & FTS_SEEDOT) && is_dot(d->d_name))
            continue;
        e = entry_new(cur->fts_path, d->d_name, strlen(d->d_name), (short)(cur->fts_level + 1), cur);
        if (!e) {
            int err = errno;

            list_free(head);
            closedir(dir);
            cur->fts_info = FTS_ERR;
            cur->fts_errno = err;
            sp->fts_options |= HP_FTS_STOP;
            errno = err;
            return NULL;
        }
        e->fts_info = entry_stat(sp, e, false);
        *tail = e;
        tail = &e->fts_link;
        n++;
    }
    closedir(dir);
    if (n == 0) {
        if (reading)
            cur->fts_info = FTS_DP;
        return NULL;
    }
    return list_sort(head, n, (hp_fts_compar)sp->fts_compar);
}

WRAP FTS *fts_open(char *const *argv, int options, hp_fts_compar compar)
{
    FTS *sp;
    FTSENT *parent, *init, *head = NULL, **tail = &head;
    size_t n = 0;

    if (!hp_conf())
        return REAL(fts_open)(argv, options, compar);
    if ((options & ~FTS_OPTIONMASK) || !argv) {
        errno = EINVAL;
        return NULL;
    }
    if (options & FTS_LOGICAL) { /* as glibc: a logical walk never changes directory */
        options |= FTS_NOCHDIR;
        options &= ~FTS_PHYSICAL;
    }
    sp = calloc(1, sizeof(*sp));
    parent = entry_new(NULL, "", 0, FTS_ROOTPARENTLEVEL, NULL);
    init = entry_new(NULL, "", 0, FTS_ROOTPARENTLEVEL, NULL);
    if (!sp || !parent || !init)
        goto fail;
    sp->fts_options = options;
    sp->fts_compar = (int (*)(const void *, const void *))compar;
    for (int i = 0; argv[i]; i++) {
        size_t len = strlen(argv[i]);
        FTSENT *e;

        if (len == 0) {
            errno = ENOENT;
            goto fail;
        }
        e = entry_new(NULL, argv[i], len, FTS_ROOTLEVEL, parent);
        if (!e)
            goto fail;
        e->fts_info = entry_stat(sp, e, (options & FTS_COMFOLLOW) != 0);
        if (e->fts_info == FTS_DOT)
            e->fts_info = FTS_D;
        *tail = e;
        tail = &e->fts_link;
        n++;
    }
    head = list_sort(head, n, compar);
    /* fts_name of a root is its last component (the whole path stays in fts_path) */
    for (FTSENT *e = head; e; e = e->fts_link) {
        char *slash = strrchr(e->fts_name, '/');

        if (slash && (slash != e->fts_name || slash[1])) {
            memmove(e->fts_name, slash + 1, strlen(slash + 1) + 1);
            e->fts_namelen = (unsigned short)strlen(e->fts_name);
        }
    }
    parent->fts_link = NULL;
    init->fts_link = head;
    init->fts_info = FTS_INIT;
    init->fts_parent = parent;
    sp->fts_cur = init;
    return sp;
fail:
    list_free(head);
    free(parent);
    free(init);
    free(sp);
    return NULL;
}

WRAP FTSENT *fts_read(FTS *sp)
{
    FTSENT *p, *tmp;
    int instr;

    if (!hp_conf())
        return REAL(fts_read)(sp);
    if (!sp->fts_cur || (sp->fts_options & HP_FTS_STOP))
        return NULL;
    p = sp->fts_cur;
    instr = p->fts_instr;
    p->fts_instr = FTS_NOINSTR;
    if (instr == FTS_AGAIN) {
        p->fts_info = entry_stat(sp, p, false);
        return p;
    }
    if (instr == FTS_FOLLOW && (p->fts_info == FTS_SL || p->fts_info == FTS_SLNONE)) {
        p->fts_info = entry_stat(sp, p, true);
        return p;
    }
    if (p->fts_info == FTS_D) {
        if (instr == FTS_SKIP || ((sp->fts_options & FTS_XDEV) && p->fts_dev != sp->fts_dev)) {
            list_free(sp->fts_child);
            sp->fts_child = NULL;
            p->fts_info = FTS_DP;
            return p;
        }
        if (!sp->fts_child) {
            sp->fts_child = build(sp, p, true);
            if (!sp->fts_child)
                return (sp->fts_options & HP_FTS_STOP) ? NULL : p;
        }
        p = sp->fts_child;
        sp->fts_child = NULL;
        return sp->fts_cur = p;
    }
next:
    tmp = p;
    p = p->fts_link;
    if (p) {
        free(tmp);
        sp->fts_cur = p;
        if (p->fts_level == FTS_ROOTLEVEL) {
            sp->fts_dev = p->fts_dev;
            return p;
        }
        if (p->fts_instr == FTS_SKIP)
            goto next;
        if (p->fts_instr == FTS_FOLLOW) {
            p->fts_info = entry_stat(sp, p, true);
            p->fts_instr = FTS_NOINSTR;
        }
        return p;
    }
    p = tmp->fts_parent;
    free(tmp);
    if (p->fts_level == FTS_ROOTPARENTLEVEL) { /* done: errno 0 tells the end from an error */
        free(p);
        sp->fts_cur = NULL;
        errno = 0;
        return NULL;
    }
    sp->fts_cur = p;
    p->fts_info = p->fts_errno ? FTS_ERR : FTS_DP;
    return p;
}

WRAP FTSENT *fts_children(FTS *sp, int instr)
{
    FTSENT *p;

    if (!hp_conf())
        return REAL(fts_children)(sp, instr);
    if (instr != 0 && instr != FTS_NAMEONLY) {
        errno = EINVAL;
        return NULL;
    }
    p = sp->fts_cur;
    errno = 0;
    if (!p || (sp->fts_options & HP_FTS_STOP))
        return NULL;
    if (p->fts_info == FTS_INIT)
        return p->fts_link;
    if (p->fts_info != FTS_D)
        return NULL;
    list_free(sp->fts_child);
    sp->fts_child = build(sp, p, false);
    return sp->fts_child;
}

WRAP int fts_set(FTS *sp, FTSENT *e, int instr)
{
    if (!hp_conf())
        return REAL(fts_set)(sp, e, instr);
    if (instr != 0 && instr != FTS_AGAIN && instr != FTS_FOLLOW && instr != FTS_NOINSTR &&
        instr != FTS_SKIP) {
        errno = EINVAL;
        return 1;
    }
    e->fts_instr = (unsigned short)instr;
    return 0;
}

WRAP int fts_close(FTS *sp)
{
    FTSENT *p;

    if (!hp_conf())
        return REAL(fts_close)(sp);
    p = sp->fts_cur;
    if (p && p->fts_info == FTS_INIT) { /* nothing read yet: the roots and their parent */
        list_free(p->fts_link);
        free(p->fts_parent);
        free(p);
    } else if (p) { /* what is left: the siblings of each level up to the roots' parent */
        while (p->fts_level >= FTS_ROOTLEVEL) {
            FTSENT *next = p->fts_link ? p->fts_link : p->fts_parent;

            free(p);
            p = next;
        }
        free(p);
    }
    list_free(sp->fts_child);
    free(sp);
    return 0;
}

/* Programs built with _FILE_OFFSET_BITS=64 call the fts64_* names (glibc >= 2.23): on 64-bit
 * FTS64/FTSENT64 have the same layout as FTS/FTSENT (declared as such from glibc 2.34's headers). */
#if __GLIBC_PREREQ(2, 34)
typedef FTS64 hp_fts64;
typedef FTSENT64 hp_ftsent64;
#else
typedef FTS hp_fts64;
typedef FTSENT hp_ftsent64;
#endif
typedef int (*hp_fts64_compar)(const hp_ftsent64 **, const hp_ftsent64 **);

WRAP hp_fts64 *fts64_open(char *const *argv, int options, hp_fts64_compar compar)
{
    if (!hp_conf())
        return REAL_T(hp_fts64 * (*)(char *const *, int, hp_fts64_compar), fts64_open)(argv, options, compar);
    return (hp_fts64 *)fts_open(argv, options, (hp_fts_compar)compar);
}

WRAP hp_ftsent64 *fts64_read(hp_fts64 *sp)
{
    if (!hp_conf())
        return REAL_T(hp_ftsent64 * (*)(hp_fts64 *), fts64_read)(sp);
    return (hp_ftsent64 *)fts_read((FTS *)sp);
}

WRAP hp_ftsent64 *fts64_children(hp_fts64 *sp, int instr)
{
    if (!hp_conf())
        return REAL_T(hp_ftsent64 * (*)(hp_fts64 *, int), fts64_children)(sp, instr);
    return (hp_ftsent64 *)fts_children((FTS *)sp, instr);
}

WRAP int fts64_set(hp_fts64 *sp, hp_ftsent64 *e, int instr)
{
    if (!hp_conf())
        return REAL_T(int (*)(hp_fts64 *, hp_ftsent64 *, int), fts64_set)(sp, e, instr);
    return fts_set((FTS *)sp, (FTSENT *)e, instr);
}

WRAP int fts64_close(hp_fts64 *sp)
{
    if (!hp_conf())
        return REAL_T(int (*)(hp_fts64 *), fts64_close)(sp);
    return fts_close((FTS *)sp);
}
#endif

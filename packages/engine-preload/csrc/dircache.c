/* The directory cache of hp_path (resolve.c).
 *
 * Absolute paths cost one lstat per component. Most programs that use them touch many names in the
 * same directory (ls -l of a glob, a shell's PATH search, Python's imports), so the last directory
 * resolved is remembered when it is reached through no symlink (its path is canonical) and exists
 * as a directory: a symlink retargeted later (ln -sfn, by another process) then cannot leave a
 * stale entry, only a directory replaced by something else can. A path in it then costs nothing (not followed) or one
 * lstat (followed: a symlink falls back to the walk). The entry is dropped when this process removes
 * or renames anything (hp_invalidate); changes made meanwhile by other processes can be seen late,
 * the same race as the component walk itself has (csrc/guestpath/guestpath.h, "Races"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "compat.h"
#include "preload.h"

#undef fstatat
#undef stat
#undef readlinkat
#undef realpath

struct dir_cache {
    unsigned gen;
    size_t len;                /* of guest; 0 = empty */
    /* the lexical guest directory, as the paths that use it spell it, then after its NUL its
     * canonical guest path; longer pairs are not remembered. Small, to share its page with the
     * library's other variables (each page a process writes is a page fault). */
    char text[1024];
};

static struct dir_cache dir_cache HP_DATA;
static int dir_cache_lock;
static unsigned dir_cache_gen = 1;

void hp_invalidate(void)
{
    __atomic_add_fetch(&dir_cache_gen, 1, __ATOMIC_ACQ_REL);
}

static bool try_lock(void)
{
    return !__atomic_exchange_n(&dir_cache_lock, 1, __ATOMIC_ACQUIRE);
}

static void unlock(void)
{
    __atomic_store_n(&dir_cache_lock, 0, __ATOMIC_RELEASE);
}

/* Whether abs is an absolute path without "", ".", ".." components or a trailing "/" (not "/"
 * itself); *dlen: the length of its directory part (0: its parent is the root). */
static bool clean_path(const char *abs, size_t *dlen)
{
    size_t last = 0, i;

    for (i = 0; abs[i]; i++) {
        if (abs[i] != '/')
            continue;
        if (abs[i + 1] == '/' || abs[i + 1] == '\0')
            return false;
        if (abs[i + 1] == '.' && (abs[i + 2] == '/' || abs[i + 2] == '\0' ||
                                  (abs[i + 2] == '.' && (abs[i + 3] == '/' || abs[i + 3] == '\0'))))
            return false;
        last = i;
    }
    *dlen = last;
    return abs[0] == '/';
}

/* The canonical guest directory of abs[0..dlen) into canon, from the cache or a walk that then
 * fills it. false when it is no existing directory (the caller walks the whole path instead).
 * host: PATH_MAX bytes to use meanwhile (the caller's result buffer: one stack page less, and
 * each one touched is a page fault in a new process). */
static bool cached_dir(const struct hp_config *c, const char *abs, size_t dlen, char *canon, char *host)
{
    unsigned gen = __atomic_load_n(&dir_cache_gen, __ATOMIC_ACQUIRE);
    char dir[PATH_MAX];
    struct stat st;
    int rc;

    if (try_lock()) {
        bool hit = dir_cache.gen == gen && dir_cache.len == dlen && memcmp(dir_cache.text, abs, dlen) == 0;

        if (hit)
            memcpy(canon, dir_cache.text + dlen + 1, strlen(dir_cache.text + dlen + 1) + 1);
        unlock();
        if (hit)
            return true;
    }
    memcpy(dir, abs, dlen);
    dir[dlen] = '\0';
    rc = gp_canonical_dir(&c->ctx, dir, canon, PATH_MAX); /* its walk saw the type: no stat */
    if (rc < 0 || gp_map_canonical(&c->ctx, canon, host, PATH_MAX) < 0 ||
        (rc == 1 && (hp_sys_fstatat(AT_FDCWD, host, &st, 0) < 0 || !S_ISDIR(st.st_mode))))
        return false;
    if (strcmp(canon, dir) != 0 || 2 * (dlen + 1) > sizeof(dir_cache.text))
        return true; /* usable now, not remembered: only directories reached through no symlink are */
    if (try_lock()) {
        dir_cache.gen = gen;
        dir_cache.len = dlen;
        memcpy(dir_cache.text, dir, dlen + 1);
        memcpy(dir_cache.text + dlen + 1, canon, strlen(canon) + 1);
        unlock();
    }
    return true;
}

/* Whether the canonical guest path is a binding's own guest path (a mount point). */
static bool is_binding(const struct hp_config *c, const char *canon)
{
    size_t len = strlen(canon);

    for (size_t i = 0; i < c->ctx.n_bindings; i++) {
        if (c->ctx.bindings[i].guest_len == len && memcmp(c->ctx.bindings[i].guest, canon, len) == 0)
            return true;
    }
    return false;
}

int hp_dircache_canonical(const struct hp_config *c, const char *abs, char *canon, char *scratch)
{
    size_t dlen, clen, nlen;

    if (!clean_path(abs, &dlen))
        return 1;
    if (dlen == 0) { /* a name in the root, which needs no cache: canonical as it is */
        memcpy(canon, abs, strlen(abs) + 1);
        return 0;
    }
    if (!cached_dir(c, abs, dlen, canon, scratch))
        return 1;
    clen = strlen(canon);
    nlen = strlen(abs + dlen);  /* "/name" */
    if (clen + nlen + 1 > PATH_MAX)
        return 1;
    memcpy(canon + (clen == 1 ? 0 : clen), abs + dlen, nlen + 1);
    return 0;
}

/* gp_to_host of an absolute guest path through the directory cache; 1 when the caller must walk. */
int hp_dircache_to_host(const struct hp_config *c, const char *abs, int flags, char *buf)
{
    char canon[PATH_MAX];
    struct stat st;

    if (hp_dircache_canonical(c, abs, canon, buf) != 0)
        return 1;
    if ((flags & (HP_RMDIR | HP_UNLINK | HP_RENAME)) && is_binding(c, canon))
        return 1; /* a mount point: the walk gives the error */
    if (gp_map_canonical(&c->ctx, canon, buf, PATH_MAX) < 0)
        return 1;
    if (!(flags & HP_FOLLOW))
        return 0;
    if (hp_sys_fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return S_ISLNK(st.st_mode) ? 1 : 0; /* a symlink to follow: its target is a guest path */
    if (errno == ENOENT && (flags & HP_EXISTS) && !gp_binding_below(&c->ctx, canon, strlen(canon)))
        return -ENOENT; /* what the kernel would answer, found out once */
    return 0;
}

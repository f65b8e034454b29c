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

static struct dir_cache dir_cache;
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

/* An absolute path without "", ".", ".." components or a trailing "/", with a parent other than
 * "/": the length of its directory part, else 0. */
static size_t clean_dir_len(const char *abs)
{
    size_t last = 0, i;

    for (i = 0; abs[i]; i++) {
        if (abs[i] != '/')
            continue;
        if (abs[i + 1] == '/' || abs[i + 1] == '\0')
            return 0;
        if (abs[i + 1] == '.' && (abs[i + 2] == '/' || abs[i + 2] == '\0' ||
                                  (abs[i + 2] == '.' && (abs[i + 3] == '/' || abs[i + 3] == '\0'))))
            return 0;
        last = i;
    }
    return last;
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
    if (gp_canonical(&c->ctx, dir, GP_FOLLOW_LAST, canon, PATH_MAX) < 0 ||
        gp_map_canonical(&c->ctx, canon, host, PATH_MAX) < 0 ||
        hp_sys_fstatat(AT_FDCWD, host, &st, 0) < 0 || !S_ISDIR(st.st_mode))
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

/* gp_to_host of an absolute guest path through the directory cache; 1 when the caller must walk. */
int hp_dircache_to_host(const struct hp_config *c, const char *abs, int flags, char *buf)
{
    char canon[PATH_MAX];
    size_t dlen = clean_dir_len(abs), clen, nlen;
    struct stat st;

    if (dlen == 0 || !cached_dir(c, abs, dlen, canon, buf))
        return 1;
    clen = strlen(canon);
    nlen = strlen(abs + dlen);  /* "/name" */
    if (clen + nlen + 1 > PATH_MAX)
        return 1;
    memcpy(canon + (clen == 1 ? 0 : clen), abs + dlen, nlen + 1);
    if ((flags & (HP_RMDIR | HP_UNLINK | HP_RENAME)) && is_binding(c, canon))
        return 1; /* a mount point: the walk gives the error */
    if (gp_map_canonical(&c->ctx, canon, buf, PATH_MAX) < 0)
        return 1;
    if ((flags & HP_FOLLOW) && hp_sys_fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        return 1; /* a symlink to follow: its target is a guest path */
    return 0;
}

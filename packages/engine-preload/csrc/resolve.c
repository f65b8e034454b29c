/* The translation every wrapper calls (hp_path): a guest path, relative to the guest cwd or to a
 * directory fd, to the host path the kernel needs, through the path core (csrc/guestpath/) with the
 * configuration's root and bindings; the pass-throughs (a plain name relative to a real directory,
 * the host's /proc, /dev, /sys), read-only bindings (EROFS), and host paths mapped back (hp_guest).
 * Absolute paths go through the directory cache first (dircache.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat.h"
#include "preload.h"

#undef fstatat
#undef stat
#undef readlinkat
#undef realpath

void hp_guest(const char *host, char *out, size_t size)
{
    const struct hp_config *c = hp_conf();
    int rc;

    if (c && host[0] == '/') {
        rc = gp_to_guest(&c->ctx, host, out, size);
        if (rc >= 0)
            return;
    }
    snprintf(out, size, "%s", host);
}

int hp_guest_cwd(char *out, size_t size)
{
    char host[PATH_MAX];
    const struct hp_config *c = hp_conf();
    int rc;

    if (!REAL(getcwd)(host, sizeof(host)))
        return -errno;
    if (!c) {
        snprintf(out, size, "%s", host);
        return 0;
    }
    rc = gp_to_guest(&c->ctx, host, out, size);
    return rc < 0 ? rc : rc == GP_OUTSIDE ? 1 : 0;
}

/* The guest directory that a relative path starts from: 0, 1 when it is outside the guest (the
 * path then goes to the kernel as it is), or -errno. */
static int guest_base(int dirfd, char *out, size_t size)
{
    char link[64], host[PATH_MAX];
    ssize_t n;
    int rc;

    if (dirfd == AT_FDCWD)
        return hp_guest_cwd(out, size);
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    n = hp_sys_readlinkat(AT_FDCWD, link, host, sizeof(host) - 1);
    if (n < 0)
        return errno == ENOENT ? -EBADF : -errno;
    host[n] = '\0';
    if (host[0] != '/')
        return 1; /* not a directory of a file system (pipe, socket): let the kernel say so */
    rc = gp_to_guest(&hp_conf()->ctx, host, out, size);
    return rc < 0 ? rc : rc == GP_OUTSIDE ? 1 : 0;
}

bool hp_null(const void *p)
{
    return p == NULL;
}

/* A path into the host's own /proc, /dev or /sys (bound at the same place): the kernel resolves
 * it, magic links (/proc/self/cwd, /dev/fd/N) included, whose targets are host paths. */
static bool kernel_path(const struct hp_config *c, const char *path)
{
    for (int k = 0; k < 3; k++) {
        size_t n = k == 0 ? 5 : 4;

        if (c->kernel_fs[k] && path[1] == hp_kernel_fs[k][1] && strncmp(path, hp_kernel_fs[k], n) == 0 &&
            (path[n] == '/' || !path[n]))
            return true;
    }
    return false;
}

bool hp_plain_name(const struct hp_config *c, const char *name)
{
    if (strchr(name, '/') || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < c->n_bound_names; i++) {
        if (strcmp(c->bound_names[i], name) == 0)
            return false;
    }
    return true;
}

/* The guest path of (dirfd, relative path) into abs; 1 when it is to go to the kernel as is. Apart
 * (noinline): its buffer is in no frame of an absolute path's translation. */
static __attribute__((noinline)) int join_base(int dirfd, const char *path, char *abs)
{
    char base[PATH_MAX];
    size_t blen, plen = strlen(path);
    int rc = guest_base(dirfd, base, sizeof(base));

    if (rc != 0)
        return rc;
    blen = strlen(base);
    if (blen + 1 + plen + 1 > PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(abs, base, blen);
    abs[blen] = '/';
    memcpy(abs + blen + 1, path, plen + 1);
    return 0;
}

/* The absolute guest path of (dirfd, path): path itself when absolute (not copied: every stack
 * page a translation touches is a page fault in a new process), else joined in abs. *rc: 0, 1
 * when it is to go to the kernel as is, or -errno. */
static const char *absolute(int dirfd, const char *path, char *abs, int *rc)
{
    if (path[0] == '/') {
        *rc = strlen(path) >= PATH_MAX ? -ENAMETOOLONG : 0;
        return path;
    }
    *rc = join_base(dirfd, path, abs);
    return abs;
}

/* Whether the host path lies in a read-only root or binding (the longest prefix decides). */
bool hp_read_only_host(const struct hp_config *c, const char *host)
{
    size_t best = 0;
    bool ro = false;

    for (size_t i = 0; i < c->n_ro; i++) {
        size_t n = strlen(c->ro[i]);

        if (n >= best && strncmp(host, c->ro[i], n) == 0 &&
            (host[n] == '/' || host[n] == '\0' || (n == 1 && c->ro[i][0] == '/'))) {
            best = n;
            ro = c->ro_flag[i];
        }
    }
    return ro;
}

/* The flags of gp_to_host for hp_path's flags. */
static int gp_flags(int flags)
{
    int gp = (flags & HP_FOLLOW) ? GP_FOLLOW_LAST : 0;

    if (flags & (HP_PARENT | HP_RMDIR | HP_UNLINK | HP_RENAME))
        gp = GP_PARENT;
    if (flags & (HP_RMDIR | HP_UNLINK | HP_RENAME))
        gp |= GP_NO_MOUNT;
    if (flags & HP_RMDIR)
        gp |= GP_RMDIR;
    if (flags & HP_UNLINK)
        gp |= GP_UNLINK;
    return gp;
}

/* hp_path failing with -rc (errno), NULL. */
static const char *failed(const char *path, int rc)
{
    if (hp_debug_level > 0) /* strerror only then: a missing file is common, strerror is not cheap */
        hp_debug("hpcbox-preload: %s: %s", path, strerror(-rc));
    errno = -rc;
    return NULL;
}

/* hp_path's translation of the absolute guest path `guest` into buf (`path`: the caller's). */
static const char *guest_to_host(const struct hp_config *c, const char *path, const char *guest, int flags,
                                 char *buf)
{
    int rc = strlen(guest) >= PATH_MAX ? -ENAMETOOLONG : 0;

    if (rc == 0)
        rc = hp_dircache_to_host(c, guest, flags, buf);
    if (rc == 1)
        rc = gp_to_host(&c->ctx, guest, gp_flags(flags), buf, PATH_MAX);
    if (rc < 0)
        return failed(path, rc);
    if ((flags & HP_WRITE) && c->n_ro && hp_read_only_host(c, buf)) {
        errno = EROFS;
        return NULL;
    }
    return buf;
}

/* The same for a relative path, joined to its directory's guest path, or for another process's
 * program (in buf: copied out of it), in a buffer of their own: apart (noinline), so that the
 * common case, an absolute path, has no such buffer in its frames (each stack page touched is a
 * page fault in a new process). */
static __attribute__((noinline)) const char *copied_to_host(const struct hp_config *c, int dirfd,
                                                            const char *path, int flags, char *buf)
{
    char abs[PATH_MAX];
    int rc = 0;

    if (path == buf)
        memcpy(abs, buf, strlen(buf) + 1);
    else
        rc = join_base(dirfd, path, abs);
    if (rc == 1)
        return path;
    if (rc < 0)
        return failed(path, rc);
    return guest_to_host(c, path, abs, flags, buf);
}

const char *hp_path(int dirfd, const char *path, int flags, char *buf)
{
    const struct hp_config *c = hp_conf();
    int rc;

    if (!path) {
        errno = EFAULT;
        return NULL;
    }
    if (!c || path[0] == '\0')
        return path;
    if ((flags & (HP_WRITE | HP_MOVE)) && c->n_ro)
        flags |= HP_NOFAST; /* a plain name may lie in a read-only binding: its host path tells */
    if (path[0] != '/' && !(flags & HP_NOFAST) && hp_plain_name(c, path)) {
        struct stat st;

        /* A name in a real directory: the kernel finds the same file, unless it is a symlink
         * that must be followed (its target is a guest path). HP_PARENT never follows it. */
        if (!(flags & HP_FOLLOW) || (flags & (HP_PARENT | HP_RMDIR | HP_UNLINK | HP_RENAME)))
            return path;
        if (hp_sys_fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
            return path;
    }
    if (path[0] == '/' && kernel_path(c, path)) {
        if ((flags & HP_FOLLOW) && c->exe[0] && hp_is_proc_exe(path)) {
            path = c->exe; /* the program's file, not the loader's (procself.c) */
        } else if ((flags & HP_FOLLOW) && hp_other_exe(path, NULL, buf, PATH_MAX) == 0) {
            path = buf; /* another process's program (procs.c), translated below from a copy */
        } else {
            /* /proc/self/root/..., /proc/self/cwd/../..: the kernel would leave the rootfs there */
            rc = strncmp(path, "/proc/", 6) == 0
                     ? gp_proc_magic(&c->ctx, path, (flags & HP_FOLLOW) ? GP_FOLLOW_LAST : 0, buf, PATH_MAX)
                     : 1;
            if (rc == 1)
                return path;
            if (rc < 0) {
                errno = -rc;
                return NULL;
            }
            if ((flags & HP_WRITE) && c->n_ro && hp_read_only_host(c, buf)) {
                errno = EROFS;
                return NULL;
            }
            return buf;
        }
    }
    if (path[0] != '/' || path == buf)
        return copied_to_host(c, dirfd, path, flags, buf);
    return guest_to_host(c, path, path, flags, buf);
}

/* hp_canonical of a relative path: apart (noinline) for its buffer, as copied_to_host. */
static __attribute__((noinline)) int canonical_joined(const struct hp_config *c, int dirfd, const char *path,
                                                      int gp, char *out)
{
    char abs[PATH_MAX];
    int rc = join_base(dirfd, path, abs);

    if (rc == 1)
        return -EXDEV;
    return rc < 0 ? rc : gp_canonical(&c->ctx, abs, gp, out, PATH_MAX);
}

int hp_canonical(int dirfd, const char *path, int flags, char *out)
{
    const struct hp_config *c = hp_conf();
    int gp = (flags & HP_FOLLOW) ? GP_FOLLOW_LAST : 0;

    if (!c)
        return -ENOSYS;
    if (!path || !*path)
        return -ENOENT;
    if (path[0] != '/')
        return canonical_joined(c, dirfd, path, gp, out);
    if (strlen(path) >= PATH_MAX)
        return -ENAMETOOLONG;
    return gp_canonical(&c->ctx, path, gp, out, PATH_MAX);
}

/* Whether the directory that holds the absolute host path `host` is in a read-only binding. */
static bool parent_read_only(const struct hp_config *c, const char *host)
{
    char dir[PATH_MAX];
    size_t n = strlen(host);

    if (!c->n_ro || host[0] != '/' || n >= sizeof(dir))
        return false; /* a relative name stays relative to a real directory: as before, unchecked */
    while (n > 1 && host[n - 1] == '/')
        n--;
    while (n > 1 && host[n - 1] != '/')
        n--;
    while (n > 1 && host[n - 1] == '/')
        n--;
    memcpy(dir, host, n);
    dir[n] = '\0';
    return hp_read_only_host(c, dir);
}

int hp_check_move(int olddirfd, const char *old, int newdirfd, const char *new, const char *new_host, int kind,
                  int follow, unsigned flags)
{
    const struct hp_config *c = hp_conf();
    char abs[PATH_MAX], canon[2][PATH_MAX];
    const char *names[2] = {old, new};
    int dirfds[2] = {olddirfd, newdirfd};
    bool readonly, old_fd;

    if (!c || !old || !new || !*new)
        return 0;
    readonly = new_host && parent_read_only(c, new_host);
    old_fd = !*old && kind == GP_MOVE_LINK && (flags & AT_EMPTY_PATH);
    if (!*old && !old_fd)
        return 0; /* the kernel's ENOENT */
    for (int i = 0; i < 2; i++) {
        int gp = (i == 1 || kind == GP_MOVE_RENAME) ? GP_PARENT : ((follow & HP_FOLLOW) ? GP_FOLLOW_LAST : 0);
        /* linkat's AT_EMPTY_PATH: the descriptor's own file, by the path the kernel knows it by */
        int rc;
        const char *guest = abs;

        if (i == 0 && old_fd)
            rc = guest_base(dirfds[0], abs, PATH_MAX);
        else
            guest = absolute(dirfds[i], names[i], abs, &rc);
        if (rc != 0 || gp_canonical(&c->ctx, guest, gp, canon[i], PATH_MAX) < 0)
            return readonly ? -EROFS : 0; /* outside the guest, or an error the kernel gives on the host path */
    }
    kind |= (readonly ? GP_MOVE_READONLY : 0) | (old_fd ? GP_MOVE_OLD_FD : 0);
    return gp_check_move(&c->ctx, canon[0], canon[1], kind, kind & GP_MOVE_LINK ? 0 : flags);
}

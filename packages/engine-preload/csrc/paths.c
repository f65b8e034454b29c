/* Paths that come back from the kernel (getcwd, readlink, realpath, /proc/self/exe) and the cwd
 * itself (chdir); dlopen. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat.h"
#include "preload.h"

#undef fstatat
#undef stat
#undef readlinkat
#undef realpath

WRAP int chdir(const char *path)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_FOLLOW | HP_NOFAST, buf);

    if (!p)
        return -1;
    return REAL(chdir)(p);
}

/* Copy a result into the caller's getcwd buffer, or allocate one as glibc and musl do. */
static char *give_cwd(const char *guest, char *buf, size_t size)
{
    size_t len = strlen(guest) + 1;

    if (!buf) {
        if (size && size < len) {
            errno = ERANGE;
            return NULL;
        }
        return strdup(guest);
    }
    if (size == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (len > size) {
        errno = ERANGE;
        return NULL;
    }
    memcpy(buf, guest, len);
    return buf;
}

WRAP char *getcwd(char *buf, size_t size)
{
    char guest[PATH_MAX];
    int rc;

    if (!hp_conf())
        return REAL(getcwd)(buf, size);
    rc = hp_guest_cwd(guest, sizeof(guest));
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    return give_cwd(guest, buf, size);
}

WRAP char *get_current_dir_name(void)
{
    return getcwd(NULL, 0);
}

#ifdef __GLIBC__
WRAP char *__getcwd_chk(char *buf, size_t size, size_t buflen)
{
    (void)buflen;
    return getcwd(buf, size);
}

WRAP char *getwd(char *buf)
{
    return getcwd(buf, PATH_MAX);
}
#endif

/* readlink of a guest path: a link's target is stored as the guest sees it, except for the
 * kernel's /proc links (cwd, fd/N, exe, root), whose host paths are mapped back. */
static ssize_t read_link(int dirfd, const char *path, char *out, size_t size)
{
    char buf[PATH_MAX], target[PATH_MAX], guest[PATH_MAX];
    const struct hp_config *c = hp_conf();
    const char *p;
    ssize_t n;
    size_t len;

    if (!c)
        return REAL(readlinkat)(dirfd, path, out, size);
    p = hp_path(dirfd, path, 0, buf);
    if (!p)
        return -1;
    if (c->exe[0] && path[0] == '/' && hp_is_proc_exe(path)) {
        snprintf(guest, sizeof(guest), "%s", c->exe);
    } else {
        n = REAL(readlinkat)(dirfd, p, target, sizeof(target) - 1);
        if (n < 0 || strncmp(p, "/proc/", 6) != 0 || target[0] != '/') {
            if (n >= 0 && (size_t)n > size)
                n = (ssize_t)size;
            if (n > 0)
                memcpy(out, target, (size_t)n);
            return n;
        }
        target[n] = '\0';
        if (hp_other_exe(p, target, guest, sizeof(guest)) < 0) /* another process's program (procs.c) */
            hp_guest(target, guest, sizeof(guest));
    }
    len = strlen(guest);
    if (len > size)
        len = size;
    memcpy(out, guest, len);
    return (ssize_t)len;
}

WRAP ssize_t readlink(const char *path, char *buf, size_t size)
{
    return read_link(AT_FDCWD, path, buf, size);
}

WRAP ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    return read_link(dirfd, path, buf, size);
}

#ifdef __GLIBC__
WRAP ssize_t __readlink_chk(const char *path, char *buf, size_t size, size_t buflen)
{
    (void)buflen;
    return read_link(AT_FDCWD, path, buf, size);
}

WRAP ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t size, size_t buflen)
{
    (void)buflen;
    return read_link(dirfd, path, buf, size);
}
#endif

WRAP char *realpath(const char *path, char *resolved)
{
    char canon[PATH_MAX], host[PATH_MAX];
    struct stat st;
    int rc;

    if (!hp_conf())
        return REAL(realpath)(path, resolved);
    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    rc = hp_canonical(AT_FDCWD, path, HP_FOLLOW, canon);
    if (rc == -EXDEV) /* the cwd is outside the guest */
        return REAL(realpath)(path, resolved);
    if (rc == 0)
        rc = gp_map_canonical(&hp_conf()->ctx, canon, host, sizeof(host));
    if (rc == 0 && hp_sys_fstatat(AT_FDCWD, host, &st, 0) < 0)
        rc = -errno;
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    if (!resolved)
        return strdup(canon);
    memcpy(resolved, canon, strlen(canon) + 1);
    return resolved;
}

WRAP char *canonicalize_file_name(const char *path)
{
    return realpath(path, NULL);
}

#ifdef __GLIBC__
WRAP char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen)
{
    (void)resolvedlen;
    return realpath(path, resolved);
}
#endif

/* dlopen: a name with a "/" is a guest path; a bare name is searched by the container's loader
 * in the library path it was started with (host paths already). */
WRAP void *dlopen(const char *file, int mode)
{
    char buf[PATH_MAX];
    const char *p = file;

    if (file && strchr(file, '/')) {
        p = hp_path(AT_FDCWD, file, HP_FOLLOW | HP_NOFAST, buf);
        if (!p)
            p = file; /* dlerror() then names the guest path */
    }
    return REAL(dlopen)(p, mode);
}

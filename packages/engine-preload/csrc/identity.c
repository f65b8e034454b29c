/* Identity: the user and group ids of the container's configuration (without privileges), the
 * container's hostname, and root emulation light: when the configured user is root, chown and
 * the setuid family succeed without effect where the kernel refuses them (EPERM). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "preload.h"

static const struct hp_config *fake(void)
{
    const struct hp_config *c = hp_conf();

    return c && c->fake_ids ? c : NULL;
}

static bool fake_root(void)
{
    const struct hp_config *c = fake();

    return c && c->uid == 0;
}

WRAP uid_t getuid(void)
{
    const struct hp_config *c = fake();

    return c ? c->uid : REAL(getuid)();
}

WRAP uid_t geteuid(void)
{
    const struct hp_config *c = fake();

    return c ? c->uid : REAL(geteuid)();
}

WRAP gid_t getgid(void)
{
    const struct hp_config *c = fake();

    return c ? c->gid : REAL(getgid)();
}

WRAP gid_t getegid(void)
{
    const struct hp_config *c = fake();

    return c ? c->gid : REAL(getegid)();
}

WRAP int getresuid(uid_t *r, uid_t *e, uid_t *s)
{
    const struct hp_config *c = fake();

    if (!c)
        return REAL(getresuid)(r, e, s);
    *r = *e = *s = c->uid;
    return 0;
}

WRAP int getresgid(gid_t *r, gid_t *e, gid_t *s)
{
    const struct hp_config *c = fake();

    if (!c)
        return REAL(getresgid)(r, e, s);
    *r = *e = *s = c->gid;
    return 0;
}

/* Under fake root, an EPERM from the kernel becomes success (the change is not made). */
#define ROOT_OK(call)                                                                              \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ < 0 && errno == EPERM && fake_root())                                              \
            return 0;                                                                              \
        return rc_;                                                                                \
    } while (0)

WRAP int setuid(uid_t uid) { ROOT_OK(REAL(setuid)(uid)); }
WRAP int setgid(gid_t gid) { ROOT_OK(REAL(setgid)(gid)); }
WRAP int seteuid(uid_t uid) { ROOT_OK(REAL(seteuid)(uid)); }
WRAP int setegid(gid_t gid) { ROOT_OK(REAL(setegid)(gid)); }
WRAP int setreuid(uid_t r, uid_t e) { ROOT_OK(REAL(setreuid)(r, e)); }
WRAP int setregid(gid_t r, gid_t e) { ROOT_OK(REAL(setregid)(r, e)); }
WRAP int setresuid(uid_t r, uid_t e, uid_t s) { ROOT_OK(REAL(setresuid)(r, e, s)); }
WRAP int setresgid(gid_t r, gid_t e, gid_t s) { ROOT_OK(REAL(setresgid)(r, e, s)); }
WRAP int setgroups(size_t n, const gid_t *list) { ROOT_OK(REAL(setgroups)(n, list)); }
WRAP int initgroups(const char *user, gid_t group) { ROOT_OK(REAL(initgroups)(user, group)); }

WRAP int fchown(int fd, uid_t uid, gid_t gid)
{
    ROOT_OK(REAL(fchown)(fd, uid, gid));
}

WRAP int chown(const char *path, uid_t uid, gid_t gid)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_FOLLOW | HP_WRITE, buf);

    if (!p)
        return -1;
    ROOT_OK(REAL(chown)(p, uid, gid));
}

WRAP int lchown(const char *path, uid_t uid, gid_t gid)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_WRITE, buf);

    if (!p)
        return -1;
    ROOT_OK(REAL(lchown)(p, uid, gid));
}

WRAP int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
    char buf[PATH_MAX];
    const char *p = hp_path(dirfd, path, ((flags & AT_SYMLINK_NOFOLLOW) ? 0 : HP_FOLLOW) | HP_WRITE, buf);

    if (!p)
        return -1;
    ROOT_OK(REAL(fchownat)(dirfd, p, uid, gid, flags));
}

WRAP int uname(struct utsname *buf)
{
    const struct hp_config *c = hp_conf();
    int rc = REAL(uname)(buf);

    if (rc == 0 && c && c->hostname[0])
        snprintf(buf->nodename, sizeof(buf->nodename), "%s", c->hostname);
    return rc;
}

WRAP int gethostname(char *name, size_t len)
{
    const struct hp_config *c = hp_conf();
    size_t n;

    if (!c || !c->hostname[0])
        return REAL(gethostname)(name, len);
    n = strlen(c->hostname);
    if (n + 1 > len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(name, c->hostname, n + 1);
    return 0;
}

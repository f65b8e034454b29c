/* Identity: the user and group ids of the container's configuration (without privileges), the
 * container's hostname, and root emulation: the process's ids are emulated with the kernel's rules
 * (csrc/guestpath/creds.h), chown under emulated root writes the container's ownership record
 * (csrc/guestpath/owners.h) and the stat family shows it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "creds.h"
#include "owners.h"
#include "preload.h"

/* The emulated credentials of this process (csrc/guestpath/creds.h): from the configuration's
 * uid/gid, or from HP_ENV_CREDS when the parent had changed them before exec. Process-wide, as
 * the set*id functions change every thread's ids. */
static struct creds creds HP_DATA;

void hp_creds_init(const char *spec, uid_t uid, gid_t gid)
{
    unsigned long v[6 + CREDS_MAX_GROUPS];
    int n = 0;
    char *end;

    creds_init(&creds, uid, gid);
    while (spec && *spec && n < 6 + CREDS_MAX_GROUPS) {
        v[n++] = strtoul(spec, &end, 10);
        if (end == spec || (*end && *end != ' '))
            return; /* malformed: the configuration's ids */
        spec = *end ? end + 1 : end;
    }
    if (n < 6)
        return;
    creds.ruid = (uint32_t)v[0], creds.euid = creds.fsuid = (uint32_t)v[1], creds.suid = (uint32_t)v[2];
    creds.rgid = (uint32_t)v[3], creds.egid = creds.fsgid = (uint32_t)v[4], creds.sgid = (uint32_t)v[5];
    creds.n_groups = n - 6;
    for (int i = 6; i < n; i++)
        creds.groups[i - 6] = (uint32_t)v[i];
}

int hp_creds_env(char *out, size_t size)
{
    int len = snprintf(out, size, HP_ENV_CREDS "=%u %u %u %u %u %u", creds.ruid, creds.euid, creds.suid,
                       creds.rgid, creds.egid, creds.sgid);

    for (int i = 0; i < creds.n_groups && len > 0 && (size_t)len < size; i++)
        len += snprintf(out + len, size - (size_t)len, " %u", creds.groups[i]);
    return len > 0 && (size_t)len < size ? 0 : -ENAMETOOLONG;
}

static struct creds *fake(void)
{
    const struct hp_config *c = hp_conf();

    return c && c->fake_ids ? &creds : NULL;
}

uid_t hp_fake_euid(void)
{
    const struct creds *c = fake();

    return c ? c->euid : (uid_t)-1;
}

static bool fake_root(void)
{
    const struct creds *c = fake();

    return c && c->euid == 0;
}

static int result(int rc)
{
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

WRAP uid_t getuid(void)
{
    const struct creds *c = fake();

    return c ? c->ruid : REAL(getuid)();
}

WRAP uid_t geteuid(void)
{
    const struct creds *c = fake();

    return c ? c->euid : REAL(geteuid)();
}

WRAP gid_t getgid(void)
{
    const struct creds *c = fake();

    return c ? c->rgid : REAL(getgid)();
}

WRAP gid_t getegid(void)
{
    const struct creds *c = fake();

    return c ? c->egid : REAL(getegid)();
}

WRAP int getresuid(uid_t *r, uid_t *e, uid_t *s)
{
    const struct creds *c = fake();

    if (!c)
        return REAL(getresuid)(r, e, s);
    *r = c->ruid, *e = c->euid, *s = c->suid;
    return 0;
}

WRAP int getresgid(gid_t *r, gid_t *e, gid_t *s)
{
    const struct creds *c = fake();

    if (!c)
        return REAL(getresgid)(r, e, s);
    *r = c->rgid, *e = c->egid, *s = c->sgid;
    return 0;
}

WRAP int getgroups(int size, gid_t list[])
{
    const struct creds *c = fake();

    if (!c)
        return REAL(getgroups)(size, list);
    if (size < 0 || (size > 0 && size < c->n_groups)) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; size > 0 && i < c->n_groups; i++)
        list[i] = c->groups[i];
    return c->n_groups;
}

/* With emulated ids the set*id family changes only them, with the kernel's rules: the process
 * keeps the caller's real ids (a dropped "root" cannot come back, as apt checks). */
#define KEEP_ID(v) ((long)(uint32_t)(v))
WRAP int setuid(uid_t uid)
{
    struct creds *c = fake();

    return c ? result(creds_setuid(c, KEEP_ID(uid))) : REAL(setuid)(uid);
}

WRAP int setgid(gid_t gid)
{
    struct creds *c = fake();

    return c ? result(creds_setgid(c, KEEP_ID(gid))) : REAL(setgid)(gid);
}

WRAP int seteuid(uid_t uid)
{
    struct creds *c = fake();

    if (c && uid == (uid_t)-1) {
        errno = EINVAL;
        return -1;
    }
    return c ? result(creds_setresuid(c, 0xffffffffL, KEEP_ID(uid), 0xffffffffL)) : REAL(seteuid)(uid);
}

WRAP int setegid(gid_t gid)
{
    struct creds *c = fake();

    if (c && gid == (gid_t)-1) {
        errno = EINVAL;
        return -1;
    }
    return c ? result(creds_setresgid(c, 0xffffffffL, KEEP_ID(gid), 0xffffffffL)) : REAL(setegid)(gid);
}

WRAP int setreuid(uid_t r, uid_t e)
{
    struct creds *c = fake();

    return c ? result(creds_setreuid(c, KEEP_ID(r), KEEP_ID(e))) : REAL(setreuid)(r, e);
}

WRAP int setregid(gid_t r, gid_t e)
{
    struct creds *c = fake();

    return c ? result(creds_setregid(c, KEEP_ID(r), KEEP_ID(e))) : REAL(setregid)(r, e);
}

WRAP int setresuid(uid_t r, uid_t e, uid_t s)
{
    struct creds *c = fake();

    return c ? result(creds_setresuid(c, KEEP_ID(r), KEEP_ID(e), KEEP_ID(s))) : REAL(setresuid)(r, e, s);
}

WRAP int setresgid(gid_t r, gid_t e, gid_t s)
{
    struct creds *c = fake();

    return c ? result(creds_setresgid(c, KEEP_ID(r), KEEP_ID(e), KEEP_ID(s))) : REAL(setresgid)(r, e, s);
}

WRAP int setgroups(size_t n, const gid_t *list)
{
    struct creds *c = fake();

    if (!c)
        return REAL(setgroups)(n, list);
    if (n > CREDS_MAX_GROUPS) {
        errno = EINVAL;
        return -1;
    }
    return result(creds_setgroups(c, (long)n, (const uint32_t *)list));
}

/* initgroups: the groups of the container's /etc/group (getgrouplist is the library's, nss.c). */
WRAP int initgroups(const char *user, gid_t group)
{
    struct creds *c = fake();
    gid_t list[CREDS_MAX_GROUPS];
    int n = CREDS_MAX_GROUPS;

    if (!c)
        return REAL(initgroups)(user, group);
    if (c->euid != 0) {
        errno = EPERM;
        return -1;
    }
    if (getgrouplist(user, group, list, &n) < 0)
        n = CREDS_MAX_GROUPS; /* more groups than fit: the first ones, as NGROUPS_MAX cuts */
    return result(creds_setgroups(c, n, (const uint32_t *)list));
}

WRAP int setfsuid(uid_t uid)
{
    struct creds *c = fake();
    uid_t old;

    if (!c)
        return REAL(setfsuid)(uid);
    old = c->fsuid;
    if (c->euid == 0 || uid == c->ruid || uid == c->euid || uid == c->suid || uid == c->fsuid)
        c->fsuid = uid;
    return (int)old;
}

WRAP int setfsgid(gid_t gid)
{
    struct creds *c = fake();
    gid_t old;

    if (!c)
        return REAL(setfsgid)(gid);
    old = c->fsgid;
    if (c->euid == 0 || gid == c->rgid || gid == c->egid || gid == c->sgid || gid == c->fsgid)
        c->fsgid = gid;
    return (int)old;
}

/* ---- ownership (csrc/guestpath/owners.h) ------------------------------------------------------
 * Under emulated ids the stat family shows the caller's ids as the container user's and what chown
 * recorded; the record file is opened at the first use in each process. */
static struct owners owners = {.fd = -1};
static int owners_state; /* 0 not opened yet, 1 open (or none configured) */
static int owners_lock;

/* A child forked while another thread held the lock would wait for it forever. */
static void owners_unlock_in_child(void)
{
    __atomic_store_n(&owners_lock, 0, __ATOMIC_RELEASE);
}

static struct owners *owners_get(const struct hp_config *c)
{
    static int atfork;

    if (!__atomic_exchange_n(&atfork, 1, __ATOMIC_ACQ_REL))
        pthread_atfork(NULL, NULL, owners_unlock_in_child);
    while (__atomic_exchange_n(&owners_lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    if (!owners_state) {
        if (c->owners)
            owners_open(&owners, c->owners, false);
        owners_state = 1;
    }
    return &owners;
}

static void owners_put(void)
{
    __atomic_store_n(&owners_lock, 0, __ATOMIC_RELEASE);
}

static void show(uint64_t dev, uint64_t ino, uint32_t *uid, uint32_t *gid, uint32_t *mode, uint64_t *rdev)
{
    const struct hp_config *c = hp_conf();
    struct owners_view v;

    if (!c || !c->fake_ids)
        return;
    v = (struct owners_view){c->real_uid, c->real_gid, c->uid, c->gid};
    owners_show(owners_get(c), &v, dev, ino, uid, gid, mode, rdev);
    owners_put();
}

void hp_show_stat(struct stat *st)
{
    uint32_t uid = st->st_uid, gid = st->st_gid, mode = st->st_mode;
    uint64_t rdev = st->st_rdev;

    show(st->st_dev, st->st_ino, &uid, &gid, &mode, &rdev);
    st->st_uid = uid, st->st_gid = gid, st->st_mode = mode, st->st_rdev = rdev;
}

#ifdef STATX_TYPE /* musl before 1.2.5 has no statx */
void hp_show_statx(struct statx *st)
{
    uint32_t uid = st->stx_uid, gid = st->stx_gid, mode = st->stx_mode;
    uint64_t rdev = makedev(st->stx_rdev_major, st->stx_rdev_minor);

    show(makedev(st->stx_dev_major, st->stx_dev_minor), st->stx_ino, &uid, &gid, &mode, &rdev);
    if (st->stx_mask & STATX_UID)
        st->stx_uid = uid;
    if (st->stx_mask & STATX_GID)
        st->stx_gid = gid;
    if (st->stx_mask & STATX_TYPE) {
        st->stx_mode = (uint16_t)mode;
        st->stx_rdev_major = major(rdev), st->stx_rdev_minor = minor(rdev);
    }
}
#endif

bool hp_forget_prepare(int dirfd, const char *host, unsigned long long id[2])
{
    const struct hp_config *c = hp_conf();
    struct stat st;
    bool any;

    if (!c || !c->fake_ids || !c->owners)
        return false;
    any = owners_any(owners_get(c));
    owners_put();
    if (!any || syscall(SYS_newfstatat, dirfd, host, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        (st.st_nlink > 1 && !S_ISDIR(st.st_mode)))
        return false;
    id[0] = st.st_dev, id[1] = st.st_ino;
    return true;
}

void hp_forget_done(const unsigned long long id[2])
{
    owners_forget(owners_get(hp_conf()), id[0], id[1]);
    owners_put();
}

/* chown under emulated root, after the kernel's own answer `rc`: its error unless EPERM (no such
 * file, ...), else the new owner recorded (-1: unchanged) for the file, found without following
 * a final link when `flags` say so. */
static int chown_record(int rc, int dirfd, const char *host, int fd, uid_t uid, gid_t gid, int flags)
{
    const struct hp_config *c = hp_conf();
    struct stat st;
    long found;

    if (!fake_root() || (rc < 0 && errno != EPERM))
        return rc;
    if (fd >= 0)
        found = syscall(SYS_fstat, fd, &st);
    else
        found = syscall(SYS_newfstatat, dirfd, host, &st, flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH));
    if (found < 0)
        return -1;
    if (uid != (uid_t)-1 || gid != (gid_t)-1) {
        struct owners_view v = {c->real_uid, c->real_gid, c->uid, c->gid};
        int saved = errno, err = owners_chown(owners_get(c), &v, st.st_dev, st.st_ino, st.st_uid, st.st_gid,
                                              (uint32_t)uid, (uint32_t)gid);

        owners_put();
        if (err < 0)
            hp_debug("hpcbox-preload: the ownership record %s: %s", c->owners ? c->owners : "(none)",
                     strerror(-err));
        errno = saved;
    }
    return 0;
}

int hp_mknod(int rc, int dirfd, const char *host, mode_t mode, dev_t dev)
{
    const struct hp_config *c = hp_conf();
    struct stat st;
    long fd;
    int err;

    if (rc == 0 || errno != EPERM || !fake_root() || !(S_ISCHR(mode) || S_ISBLK(mode)))
        return rc;
    fd = syscall(SYS_openat, dirfd, host, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (int)(mode & 07777));
    if (fd < 0)
        return -1;
    err = syscall(SYS_fstat, (int)fd, &st) < 0 ? -errno : 0;
    close((int)fd);
    if (err == 0)
        err = owners_set(owners_get(c), st.st_dev, st.st_ino, OWNERS_NONE, OWNERS_NONE, (uint32_t)mode,
                         (uint64_t)dev);
    if (err == 0 || !c->owners) { /* without a record: the file stands in for the node */
        owners_put();
        return 0;
    }
    owners_put();
    errno = -err;
    return -1;
}

WRAP int fchown(int fd, uid_t uid, gid_t gid)
{
    return chown_record(REAL(fchown)(fd, uid, gid), AT_FDCWD, "", fd, uid, gid, 0);
}

WRAP int chown(const char *path, uid_t uid, gid_t gid)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_FOLLOW | HP_WRITE, buf);

    if (!p)
        return -1;
    return chown_record(REAL(chown)(p, uid, gid), AT_FDCWD, p, -1, uid, gid, 0);
}

WRAP int lchown(const char *path, uid_t uid, gid_t gid)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_WRITE, buf);

    if (!p)
        return -1;
    return chown_record(REAL(lchown)(p, uid, gid), AT_FDCWD, p, -1, uid, gid, AT_SYMLINK_NOFOLLOW);
}

WRAP int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
    char buf[PATH_MAX];
    const char *p = hp_path(dirfd, path, ((flags & AT_SYMLINK_NOFOLLOW) ? 0 : HP_FOLLOW) | HP_WRITE, buf);

    if (!p)
        return -1;
    return chown_record(REAL(fchownat)(dirfd, p, uid, gid, flags), dirfd, p, -1, uid, gid, flags);
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

/* rootemu: the configured uid/gid (root by default) without privileges. The get*id family
 * answers from per-thread emulated credentials, the set*id family changes them with the kernel's
 * rules, chown-like calls succeed without changing owners (their ids become -1, "unchanged") and
 * write the new owners into the container's ownership record, which the stat family's answers
 * show; device nodes are created as regular files (recorded as the device), and uname can report
 * the container's hostname. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <sys/utsname.h>

#define KEEP CREDS_KEEP  /* -1 as a 32-bit id: "unchanged" */

static long put_three(pid_t tid, const struct regs *regs, uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t v[3] = {a, b, c};

    for (int i = 0; i < 3; i++) {
        int rc = mem_write(tid, regs_arg(regs, i), &v[i], sizeof(v[i]));

        if (rc < 0)
            return -EFAULT;
    }
    return 0;
}

static long getgroups_emu(pid_t tid, const struct regs *regs, const struct creds *c)
{
    long size = (long)(int)regs_arg(regs, 0);

    if (size < 0)
        return -EINVAL;
    if (size == 0)
        return c->n_groups;
    if (size < c->n_groups)
        return -EINVAL;
    if (mem_write(tid, regs_arg(regs, 1), c->groups, (size_t)c->n_groups * sizeof(uint32_t)) < 0)
        return -EFAULT;
    return c->n_groups;
}

static long setgroups_emu(pid_t tid, const struct regs *regs, struct creds *c)
{
    long n = (long)(int)regs_arg(regs, 0);
    uint32_t list[CREDS_MAX_GROUPS];

    if (c->euid != 0)
        return -EPERM;
    if (n < 0 || n > CREDS_MAX_GROUPS)
        return -EINVAL;
    if (n > 0 && mem_read(tid, regs_arg(regs, 1), list, (size_t)n * sizeof(uint32_t)) < 0)
        return -EFAULT;
    return creds_setgroups(c, n, list);
}

static long setfs(uint32_t *fs, uint32_t v, const uint32_t *r, const uint32_t *e, const uint32_t *s,
                  bool privileged)
{
    uint32_t old = *fs;

    if (privileged || v == *r || v == *e || v == *s || v == old)
        *fs = v;
    return old;
}

int rootemu_ids(struct tracer *t, struct stop *s)
{
    struct creds *c = &s->proc->creds;
    const char *n = s->sc->name;
    long a0 = (long)regs_arg(&s->regs, 0), a1 = (long)regs_arg(&s->regs, 1);
    long a2 = (long)regs_arg(&s->regs, 2), ret;

    (void)t;
    if (strcmp(n, "getuid") == 0)
        ret = c->ruid;
    else if (strcmp(n, "geteuid") == 0)
        ret = c->euid;
    else if (strcmp(n, "getgid") == 0)
        ret = c->rgid;
    else if (strcmp(n, "getegid") == 0)
        ret = c->egid;
    else if (strcmp(n, "getresuid") == 0)
        ret = put_three(s->tid, &s->regs, c->ruid, c->euid, c->suid);
    else if (strcmp(n, "getresgid") == 0)
        ret = put_three(s->tid, &s->regs, c->rgid, c->egid, c->sgid);
    else if (strcmp(n, "setuid") == 0)
        ret = creds_setuid(c, a0);
    else if (strcmp(n, "setgid") == 0)
        ret = creds_setgid(c, a0);
    else if (strcmp(n, "setreuid") == 0)
        ret = creds_setreuid(c, a0, a1);
    else if (strcmp(n, "setregid") == 0)
        ret = creds_setregid(c, a0, a1);
    else if (strcmp(n, "setresuid") == 0)
        ret = creds_setresuid(c, a0, a1, a2);
    else if (strcmp(n, "setresgid") == 0)
        ret = creds_setresgid(c, a0, a1, a2);
    else if (strcmp(n, "setfsuid") == 0)
        ret = setfs(&c->fsuid, (uint32_t)a0, &c->ruid, &c->euid, &c->suid, c->euid == 0);
    else if (strcmp(n, "setfsgid") == 0)
        ret = setfs(&c->fsgid, (uint32_t)a0, &c->rgid, &c->egid, &c->sgid, c->euid == 0);
    else if (strcmp(n, "getgroups") == 0)
        ret = getgroups_emu(s->tid, &s->regs, c);
    else if (strcmp(n, "setgroups") == 0)
        ret = setgroups_emu(s->tid, &s->regs, c);
    else
        return 0;
    s->skip = true;
    s->ret = ret;
    return 0;
}

/* The host path of a traced call's file for the tracer to look at: the translated path, or the
 * tracee's descriptor (fd >= 0 with an empty or relative path) through /proc/TID/fd. 0, 1 (the
 * descriptor itself: its magic link must be followed) or -errno. */
static int file_of(struct stop *s, int fd, int path_arg, char *out, size_t size)
{
    char rel[PATH_MAX] = "";
    int n;

    if (s->have_host) {
        memcpy(out, s->host, strlen(s->host) + 1);
        return 0;
    }
    if (fd == AT_FDCWD)
        return -ENOENT; /* a path the tracer left alone (relative to a cwd outside the guest) */
    if (path_arg >= 0 && mem_read_string(s->tid, regs_arg(&s->regs, path_arg), rel, sizeof(rel)) < 0)
        return -EFAULT;
    if (rel[0] == '/')
        return -ENOENT;
    n = snprintf(out, size, "/proc/%d/fd/%d%s%s", (int)s->tid, fd, rel[0] ? "/" : "", rel);
    if (n <= 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return rel[0] ? 0 : 1;
}

/* chown family: the kernel keeps the owners (the ids become -1, "unchanged", so its checks and
 * errors stay); under emulated root the new owners go into the ownership record. */
int rootemu_chown(struct tracer *t, struct stop *s)
{
    /* the owner arguments: chown/lchown/fchown (1, 2), fchownat (2, 3) */
    bool at = strcmp(s->sc->name, "fchownat") == 0, fd_only = strcmp(s->sc->name, "fchown") == 0;
    int first = at ? 2 : 1, flags = 0, fd = AT_FDCWD, rc;
    uint32_t uid = (uint32_t)regs_arg(&s->regs, first), gid = (uint32_t)regs_arg(&s->regs, first + 1);
    char host[PATH_MAX + 32];
    struct stat st;

    if (!t->cfg.emulate_ids)
        return 0;
    regs_set_arg(&s->regs, first, KEEP);
    regs_set_arg(&s->regs, first + 1, KEEP);
    s->dirty = true;
    if (s->proc->creds.euid != 0 || t->owners.fd < 0 || (uid == KEEP && gid == KEEP))
        return 0;
    if (at) {
        fd = (int)regs_arg(&s->regs, 0);
        flags = (int)regs_arg(&s->regs, 4);
    } else if (fd_only) {
        fd = (int)regs_arg(&s->regs, 0);
    } else if (strcmp(s->sc->name, "lchown") == 0) {
        flags = AT_SYMLINK_NOFOLLOW;
    }
    rc = file_of(s, fd, fd_only ? -1 : (at ? 1 : 0), host, sizeof(host));
    if (rc < 0 || fstatat(AT_FDCWD, host, &st, rc == 1 ? 0 : flags & AT_SYMLINK_NOFOLLOW) < 0)
        return 0; /* the kernel gives the error */
    owners_chown(&t->owners, &t->view, st.st_dev, st.st_ino, st.st_uid, st.st_gid, uid, gid);
    return 0;
}

/* mknod of a device: for an emulated ordinary user the kernel's own answer (EPERM for a caller
 * without CAP_MKNOD, after its EINVAL, ENOENT, EEXIST, EACCES, as Linux orders them); under
 * emulated root an empty regular file stands in for it, recorded as the device at the syscall's
 * exit. */
int rootemu_mknod(struct tracer *t, struct stop *s)
{
    bool at = strcmp(s->sc->name, "mknodat") == 0;
    int mode_arg = at ? 2 : 1;
    uint64_t mode = regs_arg(&s->regs, mode_arg), dev = regs_arg(&s->regs, mode_arg + 1);
    char host[PATH_MAX + 32];

    if (!t->cfg.emulate_ids || !(S_ISCHR(mode) || S_ISBLK(mode)))
        return 0;
    if (s->proc->creds.euid != 0)
        return geteuid() == 0 ? -EPERM : 0; /* a tracer run by root: the kernel would allow it */
    regs_set_arg(&s->regs, mode_arg, S_IFREG | (mode & 07777));
    s->dirty = true;
    if (t->owners.fd < 0 || file_of(s, at ? (int)regs_arg(&s->regs, 0) : AT_FDCWD, at ? 1 : 0, host, sizeof(host)) < 0)
        return 0;
    free(s->proc->exit_path);
    s->proc->exit_path = strdup(host);
    if (!s->proc->exit_path)
        return 0;
    s->proc->exit_action = EXIT_MKNOD;
    s->proc->exit_addr = mode;
    s->proc->exit_size = dev;
    s->want_exit = true;
    return 0;
}

void rootemu_mknod_exit(struct tracer *t, struct proc *p, long ret)
{
    struct stat st;

    if (ret == 0 && p->exit_path && lstat(p->exit_path, &st) == 0)
        owners_set(&t->owners, st.st_dev, st.st_ino, OWNERS_NONE, OWNERS_NONE, (uint32_t)p->exit_addr,
                   p->exit_size);
    free(p->exit_path);
    p->exit_path = NULL;
}

/* Where the tracer looks for a stat call made on the tracee's behalf: the translated path, or,
 * for a descriptor (fstat, AT_EMPTY_PATH) or a name relative to a directory descriptor, the
 * tracee's descriptor through /proc/TID/fd. *flags becomes the flags of that lookup. 1: host is
 * set; 0: the kernel answers (a path the tracer left alone, /proc, /dev, /sys, or an error). */
static int stat_target(struct stop *s, bool at, bool fd_only, int *flags, char *host, size_t size)
{
    char rel[2];
    int fd, rc;

    if (s->have_host) {
        memcpy(host, s->host, strlen(s->host) + 1);
        *flags &= ~AT_EMPTY_PATH;
        return 1;
    }
    if (!at && !fd_only)
        return 0;
    fd = (int)regs_arg(&s->regs, 0);
    if (at && (mem_read(s->tid, regs_arg(&s->regs, 1), rel, 1) < 0 || (rel[0] == '\0' && !(*flags & AT_EMPTY_PATH))))
        return 0; /* EFAULT, or ENOENT for "" without AT_EMPTY_PATH: the kernel's */
    rc = file_of(s, fd, fd_only ? -1 : 1, host, size);
    if (rc < 0)
        return 0;
    /* the descriptor itself: its magic link is followed; a name: as the call asked */
    *flags = rc == 1 ? *flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) : *flags & ~AT_EMPTY_PATH;
    return 1;
}

static int stat_show_statx(struct tracer *t, struct stop *s, const char *host, int flags)
{
    struct statx st;
    uint32_t uid, gid, mode;
    uint64_t rdev;

    if (syscall(SYS_statx, AT_FDCWD, host, flags, (unsigned)regs_arg(&s->regs, 3), &st) < 0)
        return -errno;
    uid = st.stx_uid, gid = st.stx_gid, mode = st.stx_mode;
    rdev = makedev(st.stx_rdev_major, st.stx_rdev_minor);
    owners_show(&t->owners, &t->view, makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino, &uid, &gid, &mode,
                &rdev);
    if (st.stx_mask & STATX_UID)
        st.stx_uid = uid;
    if (st.stx_mask & STATX_GID)
        st.stx_gid = gid;
    if (st.stx_mask & STATX_TYPE) {
        st.stx_mode = (uint16_t)mode;
        st.stx_rdev_major = major(rdev), st.stx_rdev_minor = minor(rdev);
    }
    return mem_write(s->tid, regs_arg(&s->regs, 4), &st, sizeof(st)) < 0 ? -EFAULT : 0;
}

static int stat_show_stat(struct tracer *t, struct stop *s, const char *host, int flags, int buf_arg)
{
    struct stat st;
    uint32_t uid, gid, mode;
    uint64_t rdev;

    if (syscall(SYS_newfstatat, AT_FDCWD, host, &st, flags) < 0)
        return -errno;
    uid = st.st_uid, gid = st.st_gid, mode = st.st_mode, rdev = st.st_rdev;
    owners_show(&t->owners, &t->view, st.st_dev, st.st_ino, &uid, &gid, &mode, &rdev);
    st.st_uid = uid, st.st_gid = gid, st.st_mode = mode, st.st_rdev = rdev;
    return mem_write(s->tid, regs_arg(&s->regs, buf_arg), &st, sizeof(st)) < 0 ? -EFAULT : 0;
}

/* The stat family under id emulation (stat, lstat, fstat, newfstatat, statx; by path, by directory
 * descriptor and name, by descriptor): the tracer makes the call itself and writes the answer with
 * the owners as the container shows them (its user for the caller's ids, the record's), so no
 * second stop is needed. A descriptor the tracer cannot look at is left to the kernel (its error). */
int rootemu_stat(struct tracer *t, struct stop *s)
{
    const char *n = s->sc->name;
    bool sx = strcmp(n, "statx") == 0, at = sx || strcmp(n, "newfstatat") == 0, fd_only = strcmp(n, "fstat") == 0;
    char host[PATH_MAX + 32];
    int flags, rc;

    if (!t->cfg.emulate_ids || s->skip)
        return 0;
    if (sx)
        flags = (int)regs_arg(&s->regs, 2);
    else if (at)
        flags = (int)regs_arg(&s->regs, 3);
    else
        flags = strcmp(n, "lstat") == 0 ? AT_SYMLINK_NOFOLLOW : 0;
    if (stat_target(s, at, fd_only, &flags, host, sizeof(host)) != 1)
        return 0;
    rc = sx ? stat_show_statx(t, s, host, flags) : stat_show_stat(t, s, host, flags, at ? 2 : 1);
    if (rc < 0 && rc != -EFAULT && !s->have_host)
        return 0; /* by descriptor: the kernel's own error (EBADF, not /proc's ENOENT) */
    s->skip = true;
    s->ret = rc;
    return 0;
}

int rootemu_uname(struct tracer *t, struct stop *s)
{
    struct utsname u;
    size_t len;

    if (!t->cfg.hostname)
        return 0;
    if (uname(&u) < 0)
        return -errno;
    len = strlen(t->cfg.hostname);
    if (len >= sizeof(u.nodename))
        len = sizeof(u.nodename) - 1;
    memset(u.nodename, 0, sizeof(u.nodename));
    memcpy(u.nodename, t->cfg.hostname, len);
    s->skip = true;
    s->ret = mem_write(s->tid, regs_arg(&s->regs, 0), &u, sizeof(u)) < 0 ? -EFAULT : 0;
    return 0;
}

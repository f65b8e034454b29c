/* hpcbox-userns: the container's filesystem (rootfs, overlay, /dev, /sys, the user's mounts,
 * pivot_root). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hpcbox_userns.h"

/* ---- mounts -------------------------------------------------------------------------------- */

/* Flags a user namespace may not drop from a mount it did not create (they are "locked"). */
static unsigned long locked_flags(const char *path)
{
    struct statvfs st;
    if (statvfs(path, &st) < 0)
        return 0;
    unsigned long flags = 0;
    if (st.f_flag & ST_NOSUID)
        flags |= MS_NOSUID;
    if (st.f_flag & ST_NODEV)
        flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (st.f_flag & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (st.f_flag & ST_NOATIME)
        flags |= MS_NOATIME;
    else if (st.f_flag & ST_RELATIME)
        flags |= MS_RELATIME;
    else
        flags |= MS_STRICTATIME;
    return flags;
}

static int remount_bind(const char *target, unsigned long flags)
{
    unsigned long all = MS_BIND | MS_REMOUNT | flags | locked_flags(target);
    if (mount(NULL, target, NULL, all, NULL) < 0)
        return usr_fail("remount %s%s", target, (flags & MS_RDONLY) ? " read-only" : "");
    return 0;
}

static int join(char *out, size_t size, const char *root, const char *rel)
{
    if ((size_t)snprintf(out, size, "%s%s", root, rel) >= size) {
        errno = ENAMETOOLONG;
        return usr_fail("path %s%s", root, rel);
    }
    return 0;
}

static int ensure_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return usr_fail("mkdir %s", path);
    return 0;
}

static int bind_dev_node(const char *dev, const char *name)
{
    char host[64], target[4096];
    snprintf(host, sizeof(host), "/dev/%s", name);
    if (join(target, sizeof(target), dev, name) < 0)
        return -1;
    AUTO_CLOSE int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0)
        return usr_fail("create %s", target);
    if (mount(host, target, NULL, MS_BIND, NULL) < 0) {
        if (!strcmp(name, "tty") && (errno == ENXIO || errno == ENOENT))
            return 0; /* no controlling terminal here: /dev/tty stays a plain placeholder */
        return usr_fail("bind %s", host);
    }
    return 0;
}

/* /dev/pts: a private devpts instance, or the host's when the caller's terminal (a host pty)
 * must keep its name inside (ttyname, `tty`, job control in interactive shells). */
static int setup_pts(const char *dev, int host_pts)
{
    char path[4096];
    if (join(path, sizeof(path), dev, "pts") < 0 || ensure_dir(path, 0755) < 0)
        return -1;
    if (host_pts) {
        if (mount("/dev/pts", path, NULL, MS_BIND | MS_REC, NULL) < 0)
            return usr_fail("bind /dev/pts on %s", path);
        return bind_dev_node(dev, "ptmx");
    }
    if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
        return usr_fail("mount devpts on %s", path);
    if (join(path, sizeof(path), dev, "ptmx") < 0)
        return -1;
    if (symlink("pts/ptmx", path) < 0)
        return usr_fail("symlink %s", path);
    return 0;
}

static int setup_dev(const char *rootfs, int host_pts)
{
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    static const char *const links[][2] = {
        {"/proc/self/fd", "fd"},         {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"},   {"/proc/kcore", "core"},
    };
    char dev[4096], path[4096];
    if (join(dev, sizeof(dev), rootfs, "/dev/") < 0 || ensure_dir(dev, 0755) < 0)
        return -1;
    if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
        return usr_fail("mount tmpfs on %s", dev);
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
        if (bind_dev_node(dev, nodes[i]) < 0)
            return -1;
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        if (join(path, sizeof(path), dev, links[i][1]) < 0)
            return -1;
        if (symlink(links[i][0], path) < 0)
            return usr_fail("symlink %s", path);
    }
    if (setup_pts(dev, host_pts) < 0)
        return -1;
    if (join(path, sizeof(path), dev, "shm") < 0 || ensure_dir(path, 01777) < 0)
        return -1;
    if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
        return usr_fail("mount tmpfs on %s", path);
    if (join(path, sizeof(path), dev, "mqueue") < 0 || ensure_dir(path, 0755) < 0)
        return -1;
    /* POSIX message queues of the new ipc namespace; optional, as in runc's default spec. */
    if (mount("mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        rmdir(path);
    return 0;
}

static int setup_sys(const char *rootfs, int new_net)
{
    char sys[4096];
    struct stat st;
    if (join(sys, sizeof(sys), rootfs, "/sys") < 0)
        return -1;
    if (stat(sys, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0; /* the rootfs has no /sys: nothing to cover */
    /* A private network namespace may have a fresh sysfs that shows its own interfaces only. */
    if (new_net && mount("sysfs", sys, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0)
        return 0;
    if (mount("/sys", sys, NULL, MS_BIND | MS_REC, NULL) < 0)
        return 0; /* not permitted here (e.g. a nested container): run without /sys */
    if (mount(NULL, sys, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(sys), NULL) < 0)
        umount2(sys, MNT_DETACH); /* a writable host /sys is worse than none */
    return 0;
}

/* mkdir -p for the parents of `path` (an absolute host path inside the rootfs). */
static int make_parents(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return usr_fail("mount target %s", path);
    }
    strcpy(buf, path);
    for (char *p = buf + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (ensure_dir(buf, 0755) < 0)
            return -1;
        *p = '/';
    }
    return 0;
}

/* Create a missing mount point: a file when a file is bound on it, a directory otherwise. */
static int make_target(const struct usr_mount *m)
{
    struct stat st;
    if (lstat(m->target, &st) == 0)
        return 0;
    if (make_parents(m->target) < 0)
        return -1;
    if ((m->flags & MS_BIND) && stat(m->source, &st) == 0 && !S_ISDIR(st.st_mode)) {
        AUTO_CLOSE int fd = open(m->target, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return usr_fail("create mount point %s", m->target);
        return 0;
    }
    return ensure_dir(m->target, 0755);
}

static int setup_user_mount(const struct usr_mount *m)
{
    if (make_target(m) < 0)
        return -1;
    if (m->flags & MS_BIND) {
        if (mount(m->source, m->target, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
            return usr_fail("bind %s on %s", m->source, m->target);
        unsigned long extra = m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
        if (extra && remount_bind(m->target, extra) < 0)
            return -1;
        return 0;
    }
    if (mount(m->source, m->target, m->fstype, m->flags, *m->data ? m->data : NULL) < 0)
        return usr_fail("mount %s (%s) on %s", m->source, m->fstype, m->target);
    return 0;
}

int setup_root(const struct usr_spec *spec)
{
    char path[4096];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return usr_fail("make / private");
    if (spec->overlay) {
        if (mount("overlay", spec->rootfs, "overlay", 0, spec->overlay) < 0)
            return usr_fail("mount overlay on %s", spec->rootfs);
    } else if (mount(spec->rootfs, spec->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) {
        return usr_fail("bind rootfs %s", spec->rootfs);
    }
    if (join(path, sizeof(path), spec->rootfs, "/proc") < 0 || ensure_dir(path, 0555) < 0)
        return -1;
    /* In the caller's pid namespace a new proc may not be mounted (another user namespace owns
     * that pid namespace): the host's /proc is bound instead, which shows the same pids. */
    if (spec->host_pid) {
        if (mount("/proc", path, NULL, MS_BIND | MS_REC, NULL) < 0)
            return usr_fail("bind /proc");
    } else if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        return usr_fail("mount /proc");
    }
    if (setup_dev(spec->rootfs, spec->host_pts) < 0)
        return -1;
    if (spec->with_sys && setup_sys(spec->rootfs, spec->new_net) < 0)
        return -1;
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (setup_user_mount(&spec->mounts[i]) < 0)
            return -1;
    if (spec->readonly && remount_bind(spec->rootfs, MS_RDONLY) < 0)
        return -1;
    if (chdir(spec->rootfs) < 0)
        return usr_fail("chdir %s", spec->rootfs);
    /* Stack the old root under the new one, then detach it: no put_old directory needed. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return usr_fail("pivot_root %s", spec->rootfs);
    if (umount2(".", MNT_DETACH) < 0)
        return usr_fail("detach the old root");
    if (chdir("/") < 0)
        return usr_fail("chdir /");
    if (spec->hostname && sethostname(spec->hostname, strlen(spec->hostname)) < 0)
        return usr_fail("sethostname %s", spec->hostname);
    return 0;
}

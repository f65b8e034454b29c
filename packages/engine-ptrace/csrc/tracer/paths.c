/* paths: translation of path arguments at a syscall stop, and the reverse direction for
 * getcwd, readlink and friends.
 * Over 500 lines: every path argument of every syscall kind goes through one handler
 * (paths_handle) and its helpers (follow flags, dirfds, moves, magic links), kept together. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int paths_guest_cwd(struct tracer *t, pid_t tid, char *out, size_t size)
{
    char link[64], host[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%d/cwd", (int)tid);
    n = readlink(link, host, sizeof(host) - 1);
    if (n < 0)
        return -errno;
    host[n] = '\0';
    if (n > 10 && strcmp(host + n - 10, " (deleted)") == 0)
        return -ENOENT;
    return gp_to_guest(chroot_gp(t, tid), host, out, size);
}

/* The guest directory that tid's directory fd is open on: 0, or 1 when there is none inside the
 * guest (not open, not a directory, deleted, outside: the kernel then answers as it would). */
static int dirfd_guest(struct tracer *t, pid_t tid, int fd, char *out, size_t size)
{
    char link[64], host[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, fd);
    n = readlink(link, host, sizeof(host) - 1);
    if (n <= 0)
        return 1;
    host[n] = '\0';
    if (host[0] != '/' || (n > 10 && strcmp(host + n - 10, " (deleted)") == 0))
        return 1;
    return gp_to_guest(chroot_gp(t, tid), host, out, size) == 0 ? 0 : 1;
}

/* The guest path of the file tid's fd is open on, even once its name is gone (linkat's
 * AT_EMPTY_PATH of an O_TMPFILE file): 0, or 1 when it has none inside the guest. */
static int fd_guest_file(struct tracer *t, pid_t tid, int fd, char *out, size_t size)
{
    static const char deleted[] = " (deleted)";
    const size_t dlen = sizeof(deleted) - 1;
    char link[64], host[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, fd);
    n = readlink(link, host, sizeof(host) - 1);
    if (n <= 0)
        return 1;
    host[n] = '\0';
    if ((size_t)n > dlen && strcmp(host + n - dlen, deleted) == 0)
        host[n - dlen] = '\0';
    if (host[0] != '/')
        return 1;
    return gp_to_guest(chroot_gp(t, tid), host, out, size) == 0 ? 0 : 1;
}

/* Whether tid's directory fd lies in a read-only binding (or the rootfs with --readonly). */
static bool dirfd_readonly(struct tracer *t, pid_t tid, int fd)
{
    char link[64], host[PATH_MAX];
    const struct tracer_mount *m;
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, fd);
    n = readlink(link, host, sizeof(host) - 1);
    if (n <= 0)
        return false;
    host[n] = '\0';
    m = host[0] == '/' ? paths_mount_of(t, host) : NULL;
    return m && (m->readonly || (m == &t->mounts[0] && t->cfg.readonly_root));
}

/* The host path through /proc/PID/{root,cwd,fd/N} the container means (procmagic.h). */
static int magic(struct tracer *t, int flags, char *host)
{
    char out[PATH_MAX];
    int rc;

    if (strncmp(host, "/proc/", 6) != 0)
        return 0;
    rc = gp_proc_magic(&t->gp, host, flags, out, sizeof(out));
    if (rc == 0)
        memcpy(host, out, strlen(out) + 1);
    return rc < 0 ? rc : 0;
}

/* "/proc/<digits>[/task/<digits>]/exe": the pid, else 0. */
static pid_t proc_exe_pid(const char *host)
{
    const char *p = host;
    long pid = 0;

    if (strncmp(p, "/proc/", 6) != 0)
        return 0;
    for (p += 6; *p >= '0' && *p <= '9'; p++)
        pid = pid * 10 + (*p - '0');
    if (pid <= 0 || pid > 0x3fffffff)
        return 0;
    if (strncmp(p, "/task/", 6) == 0)
        for (p += 6; *p >= '0' && *p <= '9'; p++)
            ;
    return strcmp(p, "/exe") == 0 ? (pid_t)pid : 0;
}

/* /proc/PID/exe followed (open, stat, exec) for a program we started through its loader: the kernel's
 * link names the loader, so the program's own file is given instead (host and canon replaced). */
static int program_file(struct tracer *t, int flags, char *canon, char *host)
{
    pid_t pid = (flags & GP_FOLLOW_LAST) ? proc_exe_pid(host) : 0;
    const struct proc *target = pid ? procs_find(&t->procs, pid) : NULL;
    int rc;

    if (!target || !target->exe)
        return 0;
    rc = gp_to_host(chroot_gp(t, pid), target->exe, GP_FOLLOW_LAST, host, PATH_MAX);
    if (rc < 0)
        return rc;
    if (canon)
        snprintf(canon, PATH_MAX, "%s", target->exe);
    return 0;
}

/* The tracee's path context, its cwd set to the directory a relative guest path starts from
 * (the cwd, or dirfd's guest directory). 1: that directory is outside the guest. */
static int context_at(struct tracer *t, pid_t tid, int dirfd, const char *guest, struct gp_context **out)
{
    struct gp_context *gp = chroot_gp(t, tid);
    int rc;

    *out = gp;
    if (guest[0] != '/') {
        char base[PATH_MAX];

        if (dirfd == AT_FDCWD)
            rc = paths_guest_cwd(t, tid, base, sizeof(base));
        else
            rc = dirfd_guest(t, tid, dirfd, base, sizeof(base));
        if (rc != 0)
            return rc < 0 ? rc : 1;
        rc = gp_set_cwd(gp, base);
        if (rc < 0)
            return rc;
    }
    return gp_set_self(gp, tid, tid);
}

int paths_translate_at(struct tracer *t, pid_t tid, int dirfd, const char *guest, int flags, char *canon,
                       char *host)
{
    struct gp_context *gp;
    int rc = context_at(t, tid, dirfd, guest, &gp);

    if (rc != 0)
        return rc;
    if (!canon) {
        rc = gp_to_host(gp, guest, flags, host, PATH_MAX);
        rc = rc < 0 ? rc : magic(t, flags, host);
        return rc < 0 ? rc : program_file(t, flags, canon, host);
    }
    rc = gp_canonical(gp, guest, flags, canon, PATH_MAX);
    if (rc < 0)
        return rc;
    rc = gp_map_canonical(gp, canon, host, PATH_MAX);
    rc = rc < 0 ? rc : magic(t, flags, host);
    return rc < 0 ? rc : program_file(t, flags, canon, host);
}

int paths_translate(struct tracer *t, pid_t tid, const char *guest, int flags, char *canon, char *host)
{
    return paths_translate_at(t, tid, AT_FDCWD, guest, flags, canon, host);
}

/* A name the kernel may resolve from a directory fd itself when the last component is not
 * followed: one component, not "..", and none of the bindings' guest components (the binding, not
 * the rootfs, is what the guest sees there). */
static bool plain_name(const struct tracer *t, const char *name)
{
    size_t n = strlen(name);

    if (strchr(name, '/') || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < t->gp.n_bindings; i++) {
        const char *g = t->gp.bindings[i].guest;

        for (const char *c = strchr(g, '/'); c; c = strchr(c + 1, '/'))
            if (strncmp(c + 1, name, n) == 0 && (c[n + 1] == '/' || c[n + 1] == '\0'))
                return false;
    }
    return true;
}

const struct tracer_mount *paths_mount_of(const struct tracer *t, const char *host)
{
    const struct tracer_mount *best = NULL;

    for (size_t i = 0; i < t->n_mounts; i++) {
        const struct tracer_mount *m = &t->mounts[i];
        size_t len = (m->len == 1) ? 0 : m->len; /* a mount of "/" matches every path */

        if (strncmp(host, m->host, len) != 0 || (host[len] != '/' && host[len] != '\0'))
            continue;
        if (!best || m->len >= best->len)
            best = m; /* the longest host prefix; a binding (later) wins a tie with the root */
    }
    return best;
}

/* An open that may create its final name: with O_EXCL, or with a trailing "/" (which Linux
 * refuses with EISDIR once the directory part resolves), only that part is resolved. */
static bool creates_parent(uint64_t open_flags, const char *guest)
{
    size_t n = strlen(guest);

    return (open_flags & O_CREAT) && ((open_flags & O_EXCL) || (n > 0 && guest[n - 1] == '/'));
}

static int follow_flags(const struct stop *s, const struct sc_path *p, const char *guest)
{
    uint64_t flags = p->flags >= 0 ? regs_arg(&s->regs, p->flags) : 0;

    switch (p->follow) {
    case F_FOLLOW:
        return GP_FOLLOW_LAST;
    case F_NOFOLLOW:
        return 0;
    case F_PARENT:
        return GP_PARENT;
    case F_RMDIR:
        return GP_PARENT | GP_NO_MOUNT | GP_RMDIR;
    case F_UNLINK:
        return GP_PARENT | GP_NO_MOUNT | GP_UNLINK;
    case F_RENAME:
        return GP_PARENT; /* a mount point: check_move, after both names */
    case F_UNLINKAT:
        return GP_PARENT | GP_NO_MOUNT | ((flags & AT_REMOVEDIR) ? GP_RMDIR : GP_UNLINK);
    case F_OPEN:
        if (creates_parent(flags, guest))
            return GP_PARENT;
        return (flags & O_NOFOLLOW) ? 0 : GP_FOLLOW_LAST;
    case F_AT_NOFOLLOW:
        return (flags & AT_SYMLINK_NOFOLLOW) ? 0 : GP_FOLLOW_LAST;
    case F_AT_FOLLOW:
        return (flags & AT_SYMLINK_FOLLOW) ? GP_FOLLOW_LAST : 0;
    case F_OPENHOW: {
        struct open_how how;

        if (mem_read(s->tid, flags, &how, sizeof(how.flags)) < 0)
            return GP_FOLLOW_LAST;
        if (creates_parent(how.flags, guest))
            return GP_PARENT;
        return (how.flags & O_NOFOLLOW) ? 0 : GP_FOLLOW_LAST;
    }
    }
    return GP_FOLLOW_LAST;
}

static bool writes(const struct stop *s, const struct sc_path *p)
{
    uint64_t flags;

    if (p->write == W_YES)
        return true;
    if (p->write != W_OPEN)
        return false;
    flags = regs_arg(&s->regs, p->flags);
    if (s->sc->p[0].follow == F_OPENHOW) {
        struct open_how how;

        if (mem_read(s->tid, flags, &how, sizeof(how.flags)) < 0)
            return false;
        flags = how.flags;
    }
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

/* readlink of /proc/N/exe of a program we started through its loader: answer the program. */
static int fake_exe_link(struct tracer *t, struct stop *s, const char *host)
{
    pid_t pid = proc_exe_pid(host);
    struct proc *target = pid ? procs_find(&t->procs, pid) : NULL;
    int buf_arg = s->sc->p[0].path + 1;
    uint64_t size = regs_arg(&s->regs, buf_arg + 1);
    size_t len;
    int rc;

    if (!target || !target->exe)
        return 0;
    len = strlen(target->exe);
    if ((int64_t)size <= 0)
        return -EINVAL;
    if (len > size)
        len = size;
    rc = mem_write(s->tid, regs_arg(&s->regs, buf_arg), target->exe, len);
    s->skip = true;
    s->ret = rc < 0 ? rc : (long)len;
    return 1;
}

#define RESTART_WINDOW (1u << 20)

/* A restarted syscall (after a signal handler, SA_RESTART) comes back with the argument we wrote:
 * same number, same scratch address below the red zone of the same stack. Write the translated
 * data there again (the handler's frame may have overwritten it) and leave the argument. */
#define N_RESTART (sizeof(((struct proc *)0)->restart) / sizeof(struct restart))

static bool restarted(struct stop *s, uint64_t addr)
{
    uint64_t low = regs_sp(&s->regs) - TRACER_RED_ZONE;

    if (addr >= low || addr < low - RESTART_WINDOW)
        return false; /* not below the red zone of this stack: the program's own data */
    for (unsigned i = 0; i < N_RESTART; i++) {
        struct restart *r = &s->proc->restart[i];

        if (r->data && r->addr == addr && r->nr == regs_nr(&s->regs))
            return mem_write(s->tid, addr, r->data, r->len) == 0;
    }
    return false;
}

static void remember(struct stop *s, uint64_t addr, const void *data, size_t len)
{
    struct restart *r = &s->proc->restart[s->proc->next_restart++ % N_RESTART];
    void *copy = malloc(len);

    free(r->data);
    *r = (struct restart){.nr = regs_nr(&s->regs), .addr = addr, .data = copy, .len = len};
    if (copy)
        memcpy(copy, data, len);
}

/* /proc, /dev, /sys: the same host paths for every process, whose meaning (/proc/self, /dev/stdin)
 * depends on who asks: the tracer must not look at them on a tracee's behalf. */
static bool kernel_fs(const char *host)
{
    static const char *const roots[] = {"/proc", "/dev", "/sys"};

    for (int i = 0; i < 3; i++) {
        size_t n = strlen(roots[i]);

        if (strncmp(host, roots[i], n) == 0 && (host[n] == '/' || host[n] == '\0'))
            return true;
    }
    return false;
}

/* rename and link: across bindings EXDEV, a mount point renamed EBUSY, a read-only binding EROFS
 * (readonly: a name's binding is), in Linux's order (gp_check_move). names: the two guest paths as
 * the program gave them; old_fd: old is linkat's AT_EMPTY_PATH descriptor. 1: done, s->ret set. */
static int check_move(struct tracer *t, struct stop *s, char names[2][PATH_MAX], bool readonly, bool old_fd)
{
    bool link = s->sc->p[0].follow != F_RENAME;
    char canon[2][PATH_MAX];
    struct gp_context *gp;
    unsigned flags = 0;
    int rc, kind;

    for (int i = 0; i < 2; i++) {
        const struct sc_path *p = &s->sc->p[i];
        int dirfd = p->dirfd >= 0 ? (int)regs_arg(&s->regs, p->dirfd) : AT_FDCWD;

        if (i == 0 && old_fd) {
            gp = chroot_gp(t, s->tid);
            rc = fd_guest_file(t, s->tid, dirfd, canon[0], PATH_MAX);
            if (rc != 0)
                break;
            continue;
        }
        rc = context_at(t, s->tid, dirfd, names[i], &gp);
        if (rc == 0)
            rc = gp_canonical(gp, names[i], follow_flags(s, p, names[i]), canon[i], PATH_MAX);
        if (rc != 0)
            break;
    }
    if (rc != 0)
        return readonly ? -EROFS : 0; /* outside the guest, or an error the kernel gives on the host path */
    if (strcmp(s->sc->name, "renameat2") == 0)
        flags = (unsigned)regs_arg(&s->regs, 4);
    kind = (link ? GP_MOVE_LINK : GP_MOVE_RENAME) | (readonly ? GP_MOVE_READONLY : 0) |
           (old_fd ? GP_MOVE_OLD_FD : 0);
    rc = gp_check_move(gp, canon[0], canon[1], kind, flags);
    if (rc == GP_SAME) {
        s->skip = true;
        s->ret = 0;
        return 1;
    }
    return rc;
}

/* linkat(fd, "", ..., AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH, which an emulated root lacks: the
 * same link made through /proc/self/fd/N with AT_SYMLINK_FOLLOW, which needs no capability. */
static int link_by_proc_fd(struct stop *s)
{
    char path[64];
    int n = snprintf(path, sizeof(path), "/proc/self/fd/%d", (int)regs_arg(&s->regs, 0));
    uint64_t at;
    int rc = scratch_put(&s->scratch, path, (size_t)n + 1, &at);

    if (rc < 0)
        return rc;
    remember(s, at, path, (size_t)n + 1);
    regs_set_arg(&s->regs, 0, (uint64_t)(int64_t)AT_FDCWD);
    regs_set_arg(&s->regs, 1, at);
    regs_set_arg(&s->regs, 4, AT_SYMLINK_FOLLOW);
    s->dirty = true;
    return 0;
}

static bool moves(const struct sc_desc *d)
{
    return d->p[0].path >= 0 && d->p[1].path >= 0 && d->p[1].follow != F_OPEN &&
           (d->p[0].follow == F_RENAME || d->p[1].follow == F_PARENT);
}

/* Linux looks a link's old name up before new's directory: where new cannot resolve (err), a
 * missing old (translated into s->host) gives its own error first. */
static int link_old_first(const struct stop *s, int err)
{
    struct stat st;

    if (!moves(s->sc) || s->sc->p[0].follow == F_RENAME || !s->have_host)
        return err;
    return lstat(s->host, &st) < 0 ? -errno : err;
}

int paths_handle(struct tracer *t, struct stop *s)
{
    char names[2][PATH_MAX];
    bool readonly = false, old_fd = false; /* a move's EROFS waits for its EXDEV (check_move) */
    int have = 0;

    for (int i = 0; i < 2; i++) {
        const struct sc_path *p = &s->sc->p[i];
        char *guest = names[i], host[PATH_MAX];
        const struct tracer_mount *m;
        uint64_t addr, at;
        int rc, dirfd, follow;

        if (p->path < 0)
            continue;
        addr = regs_arg(&s->regs, p->path);
        if (restarted(s, addr))
            continue;
        if (addr == 0 || mem_read_string(s->tid, addr, guest, PATH_MAX) < 0)
            continue; /* the kernel reports EFAULT/ENAMETOOLONG on the original */
        if (guest[0] == '\0') {
            /* "" with AT_EMPTY_PATH: the fd itself (linkat's old is then that descriptor's file) */
            old_fd = i == 0 && p->flags >= 0 && (regs_arg(&s->regs, p->flags) & AT_EMPTY_PATH);
            continue;
        }
        have |= 1 << i;
        dirfd = p->dirfd >= 0 ? (int)regs_arg(&s->regs, p->dirfd) : AT_FDCWD;
        follow = follow_flags(s, p, guest);
        if (guest[0] != '/' && dirfd != AT_FDCWD && !(follow & GP_FOLLOW_LAST) &&
            plain_name(t, guest)) {
            /* a name in a real directory, not followed (GP_PARENT's names included: never a
             * binding's): the kernel finds the same file; a write
             * only needs the directory's binding (unlinkat/mkdirat of rm -rf and tar -x) */
            if (writes(s, p) && dirfd_readonly(t, s->tid, dirfd)) {
                if (!moves(s->sc))
                    return -EROFS;
                readonly = true;
            }
            continue;
        }
        /* else relative to the fd's guest directory: an absolute symlink or ".." on the way
         * stays in the guest, a write into a read-only binding is refused */
        rc = paths_translate_at(t, s->tid, dirfd, guest, follow, NULL, host);
        if (rc == 1)
            continue;
        if (rc < 0)
            return i == 1 ? link_old_first(s, rc) : rc;
        if (i == 0 && !kernel_fs(host)) {
            memcpy(s->host, host, strlen(host) + 1);
            s->have_host = true;
        }
        m = paths_mount_of(t, host);
        if (m && m->readonly && writes(s, p)) {
            if (!moves(s->sc))
                return -EROFS;
            readonly = true;
        }
        if (s->sc->kind == SK_READLINK) {
            rc = fake_exe_link(t, s, host);
            if (rc != 0)
                return rc < 0 ? rc : 0;
            if (strncmp(host, "/proc/", 6) == 0) {
                /* the kernel's own link text (cwd, fd/N, root) is a host path: map it back at the
                 * exit; a link in the rootfs or a volume reads back as stored, as under a mount */
                s->proc->exit_action = EXIT_REVERSE_LINK;
                s->proc->exit_addr = regs_arg(&s->regs, p->path + 1);
                s->proc->exit_size = regs_arg(&s->regs, p->path + 2);
                s->want_exit = true;
            }
        }
        if (strcmp(host, guest) == 0)
            continue; /* the same on both sides (/proc, /dev, /sys): nothing to write */
        rc = scratch_put(&s->scratch, host, strlen(host) + 1, &at);
        if (rc < 0)
            return rc;
        remember(s, at, host, strlen(host) + 1);
        regs_set_arg(&s->regs, p->path, at);
        s->dirty = true;
    }
    if ((have == 3 || (have == 2 && old_fd)) && moves(s->sc)) {
        int rc = check_move(t, s, names, readonly, old_fd);

        if (rc == 0 && old_fd && t->cfg.emulate_ids && s->proc->creds.euid == 0)
            rc = link_by_proc_fd(s);
        return rc < 0 ? rc : 0;
    }
    return readonly ? -EROFS : 0;
}

int paths_readlink_exit(struct tracer *t, pid_t tid, struct proc *p, struct regs *regs)
{
    char host[PATH_MAX], guest[PATH_MAX];
    long ret = regs_ret(regs);
    size_t len;
    int rc;

    if (ret <= 0 || (uint64_t)ret >= sizeof(host))
        return 0;
    rc = mem_read(tid, p->exit_addr, host, (size_t)ret);
    if (rc < 0)
        return 0;
    host[ret] = '\0';
    if (host[0] != '/' || gp_to_guest(chroot_gp(t, tid), host, guest, sizeof(guest)) != 0)
        return 0; /* relative text, or outside the guest: as the kernel gave it */
    len = strlen(guest);
    if (len > p->exit_size)
        len = p->exit_size;
    rc = mem_write(tid, p->exit_addr, guest, len);
    if (rc < 0)
        return rc;
    regs_set_ret(regs, (long)len);
    return 1;
}

int paths_getcwd(struct tracer *t, struct stop *s)
{
    char cwd[PATH_MAX];
    uint64_t size = regs_arg(&s->regs, 1);
    size_t len;
    int rc = paths_guest_cwd(t, s->tid, cwd, sizeof(cwd));

    s->skip = true;
    if (rc < 0) {
        s->ret = rc;
        return 0;
    }
    len = strlen(cwd) + 1;
    if (len > size) {
        s->ret = -ERANGE;
        return 0;
    }
    rc = mem_write(s->tid, regs_arg(&s->regs, 0), cwd, len);
    s->ret = rc < 0 ? rc : (long)len;
    return 0;
}

/* host relative to the thread's real cwd when it lies below it, else host itself. */
static const char *host_under_cwd(pid_t tid, const char *host)
{
    char link[64], cwd[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%d/cwd", (int)tid);
    n = readlink(link, cwd, sizeof(cwd) - 1);
    if (n <= 1)
        return host;
    if (strncmp(host, cwd, (size_t)n) == 0 && host[n] == '/' && host[n + 1])
        return host + n + 1;
    return host;
}

int paths_sockaddr(struct tracer *t, struct stop *s)
{
    struct sockaddr_un sun;
    char path[sizeof(sun.sun_path) + 1], host[PATH_MAX];
    uint64_t len = regs_arg(&s->regs, 2), at;
    size_t plen, hlen;
    bool is_bind = strcmp(s->sc->name, "bind") == 0;
    const struct tracer_mount *m;
    int rc;

    if (restarted(s, regs_arg(&s->regs, 1)))
        return 0;
    if (len <= offsetof(struct sockaddr_un, sun_path) || len > sizeof(sun))
        return 0;
    memset(&sun, 0, sizeof(sun));
    if (mem_read(s->tid, regs_arg(&s->regs, 1), &sun, (size_t)len) < 0 || sun.sun_family != AF_UNIX)
        return 0;
    plen = (size_t)len - offsetof(struct sockaddr_un, sun_path);
    if (sun.sun_path[0] == '\0')
        return 0; /* abstract socket: no file system path */
    memcpy(path, sun.sun_path, plen);
    path[plen] = '\0';
    rc = paths_translate(t, s->tid, path, is_bind ? GP_PARENT : GP_FOLLOW_LAST, NULL, host);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return rc;
    m = paths_mount_of(t, host);
    if (is_bind && m && m->readonly)
        return -EROFS;
    hlen = strlen(host);
    if (hlen >= sizeof(sun.sun_path) && path[0] != '/') {
        const char *rel = host_under_cwd(s->tid, host);

        memmove(host, rel, strlen(rel) + 1); /* relative to the real cwd, as the program wrote it */
        hlen = strlen(host);
    }
    if (hlen > sizeof(sun.sun_path))
        return -ENAMETOOLONG; /* the host path does not fit a sockaddr_un */
    if (strcmp(host, path) == 0)
        return 0;
    memset(sun.sun_path, 0, sizeof(sun.sun_path));
    memcpy(sun.sun_path, host, hlen); /* 108 bytes without a NUL are allowed, as by the kernel */
    rc = scratch_put(&s->scratch, &sun, sizeof(sun), &at);
    if (rc < 0)
        return rc;
    remember(s, at, &sun, sizeof(sun));
    regs_set_arg(&s->regs, 1, at);
    regs_set_arg(&s->regs, 2, offsetof(struct sockaddr_un, sun_path) + hlen +
                                  (hlen < sizeof(sun.sun_path) ? 1 : 0));
    s->dirty = true;
    return 0;
}

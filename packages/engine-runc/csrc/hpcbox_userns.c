/*
 * hpcbox-userns: run one OCI-bundle process in fresh rootless namespaces.
 *
 * The Python side (hpcbox_engine_runc) reads config.json, resolves every path on the host and
 * hands this program a flat argv spec; no JSON is parsed here.  The process tree is
 *
 *     caller ── hpcbox-userns (runner: new user/mount/uts/ipc[/net] ns, outside the pid ns)
 *                  └── init (pid 1 of the new pid ns: mounts, pivot_root, forwards signals)
 *                        └── the container process (pid 2, exec'd with the runner's environ)
 *
 * Exit status: the container's status, 128+n when it died of signal n, 125 when the runtime
 * failed (one line on stderr), 126 when the program is not executable, 127 when not found.
 */
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

#include "hpcbox_version.h" /* csrc/common/: --version */

#define EXIT_RUNTIME 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127
#define MAX_MOUNTS 256
#define MAX_MAP_ARGS 64 /* newuidmap/newgidmap: the helper, the pid, up to 20 triples, NULL */

extern char **environ;

struct usr_mount {
    const char *source;
    const char *target; /* absolute host path, already resolved inside the rootfs */
    const char *fstype;
    unsigned long flags;
    const char *data;
};

struct usr_spec {
    int probe;
    const char *rootfs;
    const char *hostname;
    const char *cwd;
    const char *overlay; /* "lowerdir=...,upperdir=...,workdir=..." mounted on rootfs */
    long uid, gid;
    int new_net, readonly, no_new_privs, with_sys, host_pts;
    int host_pid, host_ipc; /* stay in the caller's pid/ipc namespaces (MPI ranks of one job) */
    int userns_fd;          /* join this user namespace (its ids already mapped) instead of a new one */
    int fake_chown; /* --fake-chown: chown to unmapped ids succeeds and changes nothing */
    int full_map;   /* --external-map: the caller writes the id maps (newuidmap), setgroups allowed */
    int sync_read_fd, sync_write_fd;
    /* --newuidmap/--newgidmap HELPER LIST: the runner's own helpers write the full map (no caller round) */
    char *map_argv[2][MAX_MAP_ARGS];
    char map_pid[24];
    pid_t mapper[2];
    int map_go_fd;
    /* --single-map-file ROOT PATH TEXT: written (unless there) when the full map fails and one id is mapped */
    const char *note_root, *note_path, *note_text;
    size_t n_mounts;
    struct usr_mount mounts[MAX_MOUNTS];
    char **argv;
};

static char usr_error[1024];

/* Record "context: strerror(errno)" and return -1, so callers can `return usr_fail(...)`. */
__attribute__((format(printf, 1, 2))) static int usr_fail(const char *fmt, ...)
{
    int saved = errno;
    char context[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof(context), fmt, ap);
    va_end(ap);
    if (saved)
        snprintf(usr_error, sizeof(usr_error), "%s: %s", context, strerror(saved));
    else
        snprintf(usr_error, sizeof(usr_error), "%s", context);
    errno = saved;
    return -1;
}

static void usr_report(void)
{
    dprintf(STDERR_FILENO, "hpcbox-userns: %s\n", usr_error);
}

static void usr_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define AUTO_CLOSE __attribute__((cleanup(usr_close)))

static int write_file(const char *path, const char *text)
{
    AUTO_CLOSE int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return usr_fail("open %s", path);
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        return usr_fail("write %s", path);
    return 0;
}

static int parse_long(const char *text, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || !*text || *end)
        return -1;
    *out = value;
    return 0;
}

/* "--newuidmap HELPER 0,1001,1,1,100000,65536": HELPER's argv, the runner's pid in second place. */
static int split_map_list(struct usr_spec *spec, int which, const char *helper, const char *given)
{
    char **out = spec->map_argv[which];
    char *list = strdup(given);
    if (!list)
        return usr_fail("strdup");
    size_t n = 0;
    snprintf(spec->map_pid, sizeof(spec->map_pid), "%ld", (long)getpid());
    out[n++] = (char *)helper;
    out[n++] = spec->map_pid;
    for (char *save = NULL, *word = strtok_r(list, ",", &save); word; word = strtok_r(NULL, ",", &save)) {
        long value;
        if (parse_long(word, &value) < 0 || value < 0)
            return usr_fail("bad id map '%s' for %s: give numbers separated by commas", word, helper);
        if (n + 1 >= MAX_MAP_ARGS)
            return usr_fail("id map for %s too long (at most %d numbers)", helper, MAX_MAP_ARGS - 3);
        out[n++] = word;
    }
    if (n < 5 || (n - 2) % 3)
        return usr_fail("id map for %s: give triples (inside, outside, count)", helper);
    out[n] = NULL;
    return 0;
}

static int parse_args(int argc, char **argv, struct usr_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->sync_read_fd = spec->sync_write_fd = spec->userns_fd = spec->map_go_fd = -1;
    spec->with_sys = 1;
    int i = 1;
    for (; i < argc; i++) {
        const char *opt = argv[i];
        int left = argc - i - 1;
        if (!strcmp(opt, "--")) {
            i++;
            break;
        } else if (!strcmp(opt, "--probe")) {
            spec->probe = 1;
        } else if (!strcmp(opt, "--net-none")) {
            spec->new_net = 1;
        } else if (!strcmp(opt, "--readonly")) {
            spec->readonly = 1;
        } else if (!strcmp(opt, "--no-new-privs")) {
            spec->no_new_privs = 1;
        } else if (!strcmp(opt, "--host-pts")) {
            spec->host_pts = 1;
        } else if (!strcmp(opt, "--fake-chown")) {
            spec->fake_chown = 1;
        } else if (!strcmp(opt, "--external-map")) {
            spec->full_map = 1;
        } else if (!strcmp(opt, "--no-sys")) {
            spec->with_sys = 0;
        } else if (!strcmp(opt, "--host-pid")) {
            spec->host_pid = 1;
        } else if (!strcmp(opt, "--host-ipc")) {
            spec->host_ipc = 1;
        } else if (!strcmp(opt, "--userns-fd") && left >= 1) {
            long fd;
            if (parse_long(argv[++i], &fd) || fd < 0 || fd > 65535)
                return usr_fail("bad --userns-fd value '%s': give an open file descriptor", argv[i]);
            spec->userns_fd = (int)fd;
        } else if (!strcmp(opt, "--rootfs") && left >= 1) {
            spec->rootfs = argv[++i];
        } else if (!strcmp(opt, "--hostname") && left >= 1) {
            spec->hostname = argv[++i];
        } else if (!strcmp(opt, "--cwd") && left >= 1) {
            spec->cwd = argv[++i];
        } else if (!strcmp(opt, "--overlay") && left >= 1) {
            spec->overlay = argv[++i];
        } else if ((!strcmp(opt, "--uid") || !strcmp(opt, "--gid")) && left >= 1) {
            long *out = opt[2] == 'u' ? &spec->uid : &spec->gid;
            if (parse_long(argv[++i], out) || *out < 0)
                return usr_fail("bad %s value '%s': give a number >= 0", opt, argv[i]);
        } else if (!strcmp(opt, "--sync") && left >= 2) {
            long r, w;
            if (parse_long(argv[i + 1], &r) || parse_long(argv[i + 2], &w))
                return usr_fail("bad --sync fds '%s %s': give two numbers", argv[i + 1], argv[i + 2]);
            spec->sync_read_fd = (int)r;
            spec->sync_write_fd = (int)w;
            i += 2;
        } else if ((!strcmp(opt, "--newuidmap") || !strcmp(opt, "--newgidmap")) && left >= 2) {
            if (split_map_list(spec, opt[5] == 'u' ? 0 : 1, argv[i + 1], argv[i + 2]) < 0)
                return -1;
            i += 2;
        } else if (!strcmp(opt, "--single-map-file") && left >= 3) {
            spec->note_root = argv[i + 1];
            spec->note_path = argv[i + 2];
            spec->note_text = argv[i + 3];
            i += 3;
        } else if (!strcmp(opt, "--mount") && left >= 5) {
            if (spec->n_mounts >= MAX_MOUNTS)
                return usr_fail("too many mounts (at most %d)", MAX_MOUNTS);
            struct usr_mount *m = &spec->mounts[spec->n_mounts++];
            char *end = NULL;
            m->source = argv[i + 1];
            m->target = argv[i + 2];
            m->fstype = argv[i + 3];
            errno = 0;
            m->flags = strtoul(argv[i + 4], &end, 10);
            if (errno || !*argv[i + 4] || *end)
                return usr_fail("bad mount flags '%s' for %s", argv[i + 4], m->target);
            m->data = argv[i + 5];
            i += 5;
        } else {
            return usr_fail("unknown or incomplete option '%s' (this runner is driven by hpcbox_engine_runc)",
                            opt);
        }
    }
    spec->argv = argv + i;
    if (!spec->probe && (!spec->rootfs || !*spec->argv))
        return usr_fail("usage: hpcbox-userns --rootfs DIR [options] -- PROGRAM [ARGS...]");
    if (!spec->map_argv[0][0] != !spec->map_argv[1][0])
        return usr_fail("--newuidmap and --newgidmap go together");
    if (spec->map_argv[0][0] && (spec->userns_fd >= 0 || spec->full_map))
        return usr_fail("--newuidmap is for a new user namespace whose ids the caller does not map");
    return 0;
}

/* ---- user namespace ------------------------------------------------------------------------ */

static int map_ids(long container_uid, long container_gid, uid_t host_uid, gid_t host_gid)
{
    char line[64];
    if (write_file("/proc/self/setgroups", "deny") < 0)
        return -1;
    snprintf(line, sizeof(line), "%ld %u 1\n", container_uid, (unsigned)host_uid);
    if (write_file("/proc/self/uid_map", line) < 0)
        return -1;
    snprintf(line, sizeof(line), "%ld %u 1\n", container_gid, (unsigned)host_gid);
    return write_file("/proc/self/gid_map", line);
}

/* Join the user namespace another runner of the same MPI job created (its ids are mapped). */
static int join_userns(int fd)
{
    if (setns(fd, CLONE_NEWUSER) < 0)
        return usr_fail("join the MPI job's user namespace (setns)");
    close(fd);
    return 0;
}

/* A mapper process: wait for the go, then become newuidmap/newgidmap (quiet: a refusal means one id). */
static void run_mapper(char *const *argv, const int go[2], const sigset_t *old_mask)
{
    char byte;
    ssize_t got;
    close(go[1]);
    do
        got = read(go[0], &byte, 1);
    while (got < 0 && errno == EINTR);
    if (got != 1)
        _exit(EXIT_RUNTIME); /* the runner failed (or died) before its namespace existed */
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0)
        _exit(EXIT_RUNTIME);
    if (sigprocmask(SIG_SETMASK, old_mask, NULL) < 0)
        _exit(EXIT_RUNTIME);
    execv(argv[0], argv);
    _exit(EXIT_NOTFOUND);
}

/* --newuidmap/--newgidmap: fork one process per helper now, while the runner is still in the caller's
 * user namespace (a setuid helper exec'd from inside the new one would not be setuid). Each waits for
 * the runner's go (its new namespace exists), then execs its helper on the runner's pid: the two maps
 * are written at the same time, with no round trip through the caller. */
static int start_mappers(struct usr_spec *spec, const sigset_t *old_mask)
{
    if (!spec->map_argv[0][0])
        return 0;
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return usr_fail("pipe for the id map helpers");
    for (int k = 0; k < 2; k++) {
        spec->mapper[k] = fork();
        if (spec->mapper[k] < 0) {
            int saved = errno;
            close(go[0]);
            close(go[1]); /* a mapper already started reads EOF and exits */
            errno = saved;
            return usr_fail("fork the %s helper", spec->map_argv[k][0]);
        }
        if (spec->mapper[k] == 0)
            run_mapper(spec->map_argv[k], go, old_mask);
    }
    close(go[0]);
    spec->map_go_fd = go[1];
    return 0;
}

/* Write a map file unless something is in it already (a helper that succeeded). */
static int map_if_empty(const char *path, const char *line, const char *setgroups_first)
{
    char current[64];
    AUTO_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return usr_fail("open %s", path);
    ssize_t got = read(fd, current, sizeof(current));
    if (got < 0)
        return usr_fail("read %s", path);
    if (got > 0)
        return 0;
    if (setgroups_first && write_file("/proc/self/setgroups", setgroups_first) < 0)
        return -1;
    return write_file(path, line);
}

/* *name* in *dir*: left alone when it exists, else written whole (a temporary file renamed). */
static int write_note_file(int dir, const char *name, const char *text)
{
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    char temp[512];
    if (snprintf(temp, sizeof(temp), "%s.tmp-%ld", name, (long)getpid()) >= (int)sizeof(temp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = openat(dir, temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    int saved = errno;
    if (close(fd) < 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && renameat(dir, temp, dir, name) == 0)
        return 0;
    unlinkat(dir, temp, 0);
    errno = saved ? saved : EIO;
    return -1;
}

/* The note that says one id is mapped (apt's sandbox setting), created at note_root/note_path unless a
 * file is there, with the directories it needs; where a symbolic link stands in the way (an image may
 * plant one) nothing is written, as the Python side does. */
static int write_single_map_note(const struct usr_spec *spec)
{
    if (!spec->note_root)
        return 0;
    char rel[4096];
    if (snprintf(rel, sizeof(rel), "%s", spec->note_path) >= (int)sizeof(rel) || rel[0] == '/' || !rel[0]) {
        errno = 0;
        return usr_fail("bad --single-map-file path '%s': give a relative path", spec->note_path);
    }
    int dir = open(spec->note_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return usr_fail("open %s", spec->note_root);
    char *name = rel;
    for (char *slash = strchr(name, '/'); slash; slash = strchr(name, '/')) {
        *slash = '\0';
        if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST) {
            close(dir);
            return usr_fail("create %s/%s", spec->note_root, rel);
        }
        int next = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dir);
        if (next < 0 && (errno == ELOOP || errno == ENOTDIR))
            return 0; /* a link (or a file) an image planted there: nothing is written through it */
        if (next < 0)
            return usr_fail("open %s/%s", spec->note_root, rel);
        dir = next;
        *slash = '/';
        name = slash + 1;
    }
    int code = write_note_file(dir, name, spec->note_text);
    close(dir);
    return code < 0 ? usr_fail("write %s/%s", spec->note_root, spec->note_path) : 0;
}

/* After unshare: let the mappers go and wait for both; where either helper failed (no setuid bit, a
 * range the helper refuses...), map the caller's one id for whatever is still unmapped. */
static int map_through_helpers(struct usr_spec *spec, uid_t host_uid, gid_t host_gid)
{
    static const char go[2] = {'G', 'G'};
    int ok = write(spec->map_go_fd, go, sizeof(go)) == (ssize_t)sizeof(go);
    close(spec->map_go_fd);
    spec->map_go_fd = -1;
    for (int k = 0; k < 2; k++) {
        int status = 0;
        pid_t done;
        do
            done = waitpid(spec->mapper[k], &status, 0);
        while (done < 0 && errno == EINTR);
        if (done < 0)
            return usr_fail("wait for %s", spec->map_argv[k][0]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ok = 0;
    }
    if (ok)
        return 0;
    char line[64];
    snprintf(line, sizeof(line), "%ld %u 1\n", spec->uid, (unsigned)host_uid);
    if (map_if_empty("/proc/self/uid_map", line, NULL) < 0)
        return -1;
    snprintf(line, sizeof(line), "%ld %u 1\n", spec->gid, (unsigned)host_gid);
    if (map_if_empty("/proc/self/gid_map", line, "deny") < 0)
        return -1;
    return write_single_map_note(spec);
}

static int enter_namespaces(struct usr_spec *spec)
{
    uid_t host_uid = geteuid();
    gid_t host_gid = getegid();
    int flags = CLONE_NEWNS | CLONE_NEWUTS;
    if (spec->userns_fd < 0)
        flags |= CLONE_NEWUSER;
    else if (join_userns(spec->userns_fd) < 0)
        return -1;
    if (!spec->host_pid)
        flags |= CLONE_NEWPID;
    if (!spec->host_ipc)
        flags |= CLONE_NEWIPC;
    if (spec->new_net)
        flags |= CLONE_NEWNET;
    if (unshare(flags) < 0)
        return usr_fail("unshare %smount/uts%s%s%s namespaces", spec->userns_fd < 0 ? "user/" : "",
                        spec->host_pid ? "" : "/pid", spec->host_ipc ? "" : "/ipc", spec->new_net ? "/net" : "");
    if (spec->userns_fd >= 0)
        return 0;
    if (spec->map_go_fd >= 0)
        return map_through_helpers(spec, host_uid, host_gid);
    if (spec->full_map)
        return 0; /* the caller maps the ids (newuidmap/newgidmap) before its go-ahead */
    return map_ids(spec->uid, spec->gid, host_uid, host_gid);
}

/* Tell the caller the namespaces exist, then wait for its go-ahead (it brings `lo` up). */
static int sync_with_caller(const struct usr_spec *spec)
{
    if (spec->sync_write_fd < 0)
        return 0;
    char byte = 'R';
    if (write(spec->sync_write_fd, &byte, 1) != 1)
        return usr_fail("sync: tell the caller the namespaces are ready");
    close(spec->sync_write_fd);
    ssize_t got;
    do
        got = read(spec->sync_read_fd, &byte, 1);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return usr_fail("sync: wait for the caller");
    close(spec->sync_read_fd);
    if (got == 0 || byte != 'G') {
        errno = 0;
        return usr_fail("setup aborted by the caller before the container started");
    }
    return 0;
}

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

static int setup_root(const struct usr_spec *spec)
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

/* ---- ownership changes to ids the namespace does not map --------------------------------------
 *
 * With one mapped id (or a subordinate range that ends somewhere), chown/chgrp to any other id fails
 * with EINVAL, and package installs die on it (dpkg unpacking a file owned by another user, a
 * maintainer script's `chgrp _ssh`). A seccomp filter makes exactly those calls succeed without
 * doing anything: the file keeps its owner, as under fakeroot without its database. Calls whose ids
 * are all mapped (or -1, "unchanged") reach the kernel as usual.
 */

#if defined(__x86_64__)
#define USR_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define USR_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define MAX_ID_RANGES 8
#define MAX_FILTER 256

struct id_ranges {
    size_t n;
    unsigned long lo[MAX_ID_RANGES], hi[MAX_ID_RANGES]; /* [lo, hi) inside the namespace */
};

/* The inside ranges of /proc/self/uid_map or gid_map. */
static int read_id_map(const char *path, struct id_ranges *out)
{
    FILE *file = fopen(path, "re");
    if (!file)
        return usr_fail("open %s", path);
    unsigned long inside, outside, count;
    out->n = 0;
    while (out->n < MAX_ID_RANGES && fscanf(file, "%lu %lu %lu", &inside, &outside, &count) == 3) {
        out->lo[out->n] = inside;
        out->hi[out->n] = inside + count;
        out->n++;
    }
    fclose(file);
    return 0;
}

struct bpf_buf {
    size_t n;
    struct sock_filter ins[MAX_FILTER];
};

static void emit(struct bpf_buf *b, unsigned short code, unsigned char jt, unsigned char jf, unsigned int k)
{
    if (b->n < MAX_FILTER)
        b->ins[b->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

static unsigned int arg_low_word(unsigned int arg)
{
    unsigned int offset = (unsigned int)offsetof(struct seccomp_data, args[0]) + 8 * arg;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    offset += 4;
#endif
    return offset;
}

/* Syscall argument `arg` (an id) is -1 or inside one of `ranges`: fall through to the next block;
 * else return "success" without running the call.  Block length: 3 + 2 * ranges->n. */
static void emit_id_check(struct bpf_buf *b, unsigned int arg, const struct id_ranges *ranges)
{
    unsigned int len = 3 + 2 * (unsigned int)ranges->n;
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, arg_low_word(arg));
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, (unsigned char)(len - 2), 0, 0xffffffffu);
    for (unsigned int i = 0; i < ranges->n; i++) {
        emit(b, BPF_JMP | BPF_JGE | BPF_K, 0, 1, (unsigned int)ranges->lo[i]);
        emit(b, BPF_JMP | BPF_JGE | BPF_K, 0, (unsigned char)(len - 4 - 2 * i), (unsigned int)ranges->hi[i]);
    }
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | 0);
}

static int install_chown_filter(void)
{
#ifdef USR_AUDIT_ARCH
    struct id_ranges uids, gids;
    if (read_id_map("/proc/self/uid_map", &uids) < 0 || read_id_map("/proc/self/gid_map", &gids) < 0)
        return -1;
    static const long path_calls[] = {
#ifdef SYS_chown
        SYS_chown,
#endif
#ifdef SYS_lchown
        SYS_lchown,
#endif
        SYS_fchown,
    };
    unsigned char m = (unsigned char)(sizeof(path_calls) / sizeof(path_calls[0]));
    unsigned int block = 3 + 2 * (unsigned int)uids.n + 3 + 2 * (unsigned int)gids.n + 1;
    unsigned char allow = (unsigned char)(4 + m), first = (unsigned char)(allow + 1);
    struct bpf_buf b = {0};
    emit(&b, BPF_LD | BPF_W | BPF_ABS, 0, 0, (unsigned int)offsetof(struct seccomp_data, arch));
    emit(&b, BPF_JMP | BPF_JEQ | BPF_K, 0, (unsigned char)(allow - 2), USR_AUDIT_ARCH);
    emit(&b, BPF_LD | BPF_W | BPF_ABS, 0, 0, (unsigned int)offsetof(struct seccomp_data, nr));
    for (unsigned char i = 0; i < m; i++) /* chown(path, uid, gid) and friends: ids in args 1, 2 */
        emit(&b, BPF_JMP | BPF_JEQ | BPF_K, (unsigned char)(first - (4 + i)), 0, (unsigned int)path_calls[i]);
    /* fchownat(dirfd, path, uid, gid, flags): ids in args 2, 3 */
    emit(&b, BPF_JMP | BPF_JEQ | BPF_K, (unsigned char)(first + block - (4 + m)), 0, SYS_fchownat);
    emit(&b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit_id_check(&b, 1, &uids);
    emit_id_check(&b, 2, &gids);
    emit(&b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit_id_check(&b, 2, &uids);
    emit_id_check(&b, 3, &gids);
    emit(&b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    if (b.n >= MAX_FILTER) {
        errno = 0;
        return usr_fail("the ownership filter is too long");
    }
    struct sock_fprog prog = {.len = (unsigned short)b.n, .filter = b.ins};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0 && errno != EINVAL)
        return usr_fail("install the seccomp filter for unmapped ownership changes");
#endif
    return 0;
}

/* ---- processes ----------------------------------------------------------------------------- */

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* The forwarded signals that were ignored when the runner started (SIGHUP under nohup, SIGINT in a
 * background job). exec(2) keeps SIG_IGN, so natively the program would ignore them: they are
 * neither waited for nor forwarded, and the container process keeps them ignored. Inherited by
 * init and the container process through fork. */
static sigset_t ignored_at_start;

static int record_ignored(void)
{
    sigemptyset(&ignored_at_start);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        struct sigaction now;
        if (sigaction(forwarded[i], NULL, &now) < 0)
            return usr_fail("sigaction query of signal %d", forwarded[i]);
        if (now.sa_handler == SIG_IGN)
            sigaddset(&ignored_at_start, forwarded[i]);
    }
    return 0;
}

static void forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (!sigismember(&ignored_at_start, forwarded[i]))
            sigaddset(set, forwarded[i]);
    sigaddset(set, SIGCHLD);
}

static void on_signal(int sig)
{
    (void)sig;
}

/* The container process, before it unblocks signals: the default action for the forwarded ones
 * init handles, SIG_IGN for those ignored at start. It was forked with init's (empty) handlers, and
 * a signal sent between the fork and the exec (a batch system's SIGTERM that came early, forwarded
 * by init) would otherwise run that handler and be lost; with the default it ends the process as
 * it would have ended the program. */
static int default_handlers(void)
{
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        int sig = forwarded[i];
        if (signal(sig, sigismember(&ignored_at_start, sig) ? SIG_IGN : SIG_DFL) == SIG_ERR)
            return usr_fail("signal %d to its action at start", sig);
    }
    return 0;
}

/* A pid-namespace init only receives signals it handles: give each forwarded one a handler (those
 * ignored at start stay ignored). */
static int install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (!sigismember(&ignored_at_start, forwarded[i]) && sigaction(forwarded[i], &sa, NULL) < 0)
            return usr_fail("sigaction");
    return 0;
}

static int status_to_exit(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return EXIT_RUNTIME;
}

/* Wait for `child` while forwarding signals to it; reap every other child too (pid 1 duty). */
static int supervise(pid_t child)
{
    sigset_t set;
    forwarded_set(&set);
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            usr_fail("sigwaitinfo");
            usr_report();
            return EXIT_RUNTIME;
        }
        if (sig != SIGCHLD) {
            /* A terminal signals its whole foreground process group, the container included:
             * forwarding those (si_code SI_KERNEL) would deliver them twice. */
            if (info.si_code != SI_KERNEL)
                kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t done = waitpid(-1, &status, WNOHANG);
            if (done <= 0)
                break;
            if (done == child)
                return status_to_exit(status);
        }
    }
}

static void exec_container(const struct usr_spec *spec, const sigset_t *old_mask)
{
    int code = EXIT_RUNTIME;
    if (spec->fake_chown && install_chown_filter() < 0)
        goto fail;
    /* a full map allows setgroups: drop the caller's groups (they would show as nogroup); where the
     * map fell back to a single id, setgroups is denied and there are none to drop */
    if ((spec->full_map || spec->map_argv[0][0]) && setgroups(0, NULL) < 0 && errno != EPERM) {
        usr_fail("setgroups");
        goto fail;
    }
    if (setresgid(spec->gid, spec->gid, spec->gid) < 0) {
        usr_fail("setgid %ld", spec->gid);
        goto fail;
    }
    if (setresuid(spec->uid, spec->uid, spec->uid) < 0) {
        usr_fail("setuid %ld", spec->uid);
        goto fail;
    }
    /* Without a pid namespace of its own, nothing kills the program when the init dies: ask. */
    if (spec->host_pid && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        usr_fail("prctl pdeathsig");
        goto fail;
    }
    if (spec->cwd && chdir(spec->cwd) < 0) {
        usr_fail("chdir to the working directory %s", spec->cwd);
        goto fail;
    }
    if (spec->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        usr_fail("prctl no_new_privs");
        goto fail;
    }
    if (default_handlers() < 0)
        goto fail;
    if (sigprocmask(SIG_SETMASK, old_mask, NULL) < 0) {
        usr_fail("sigprocmask");
        goto fail;
    }
    execvp(spec->argv[0], spec->argv);
    code = (errno == ENOENT || errno == ENOTDIR) ? EXIT_NOTFOUND : EXIT_NOEXEC;
    usr_fail("exec %s", spec->argv[0]);
fail:
    usr_report();
    _exit(code);
}

/* Parent pid of process `pid` from /proc/PID/stat (the field after the ')' of the name, then the state). */
static pid_t parent_of(const char *pid)
{
    char path[320], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    AUTO_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    if (got <= 0)
        return -1;
    buf[got] = '\0';
    char *end = strrchr(buf, ')');
    long ppid;
    if (!end || sscanf(end + 1, " %*c %ld", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/* SIGKILL every child of this process; return how many were found (-1 when /proc is unreadable). */
static int kill_children(void)
{
    pid_t self = getpid();
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1;
    int found = 0;
    struct dirent *entry;
    while ((entry = readdir(proc))) {
        if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
            continue;
        if (parent_of(entry->d_name) == self) {
            found++;
            kill((pid_t)atol(entry->d_name), SIGKILL);
        }
    }
    closedir(proc);
    return found;
}

/* In the caller's pid namespace no kernel teardown ends what the program left behind: the init is
 * a child subreaper (orphans come to it), and kills and reaps them until none is left. */
static void kill_leftovers(void)
{
    for (;;) {
        if (kill_children() < 0)
            return;
        if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
            return;
    }
}

/* The container's init (pid 1 of its pid namespace, or a subreaper in the caller's): build the
 * filesystem, start the process, supervise it. */
static int run_init(const struct usr_spec *spec, const sigset_t *old_mask)
{
    /* The runner lives outside this pid namespace (getppid() says 0): tie our life to it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        usr_fail("prctl pdeathsig");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (spec->host_pid && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        usr_fail("prctl child subreaper");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (install_handlers() < 0 || setup_root(spec) < 0) {
        usr_report();
        return EXIT_RUNTIME;
    }
    pid_t child = fork();
    if (child < 0) {
        usr_fail("fork the container process");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (child == 0)
        exec_container(spec, old_mask);
    int code = supervise(child);
    if (spec->host_pid)
        kill_leftovers();
    return code;
}

/* Can this user create the namespaces, mount a /proc (and an overlay, when asked) here? */
static int probe(const struct usr_spec *asked)
{
    struct usr_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.userns_fd = spec.sync_read_fd = spec.sync_write_fd = spec.map_go_fd = -1;
    if (enter_namespaces(&spec) < 0)
        return -1;
    pid_t child = fork();
    if (child < 0)
        return usr_fail("fork into the pid namespace");
    if (child == 0) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            usr_fail("make / private");
        else if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            usr_fail("mount /proc");
        else if (asked->overlay && asked->rootfs &&
                 mount("overlay", asked->rootfs, "overlay", 0, asked->overlay) < 0)
            usr_fail("mount overlay on %s", asked->rootfs);
        else
            _exit(0);
        usr_report();
        _exit(EXIT_RUNTIME);
    }
    int status;
    if (waitpid(child, &status, 0) < 0)
        return usr_fail("waitpid");
    if (status_to_exit(status) != 0) {
        errno = 0;
        return usr_fail("probe failed in the new namespaces (see the line above)");
    }
    return 0;
}

/* Die with the caller (`hpcbox run`): a SIGKILLed caller must not leave the container running.
 * Set after the namespaces exist, since changing credentials clears the death signal; the init
 * dies with us (its own death signal), and with it everything in the pid namespace. */
static int tie_to_caller(pid_t caller)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return usr_fail("prctl pdeathsig");
    if (getppid() != caller) {
        errno = 0;
        return usr_fail("the caller exited before the container started");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (hpcbox_version_asked(argc, argv))
        return hpcbox_version_print("hpcbox-userns");
    struct usr_spec *spec = calloc(1, sizeof(*spec));
    if (!spec || parse_args(argc, argv, spec) < 0) {
        if (!spec)
            usr_fail("calloc");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (spec->probe) {
        if (probe(spec) < 0) {
            usr_report();
            return EXIT_RUNTIME;
        }
        return 0;
    }
    sigset_t set, old_mask;
    if (record_ignored() < 0) {
        usr_report();
        return EXIT_RUNTIME;
    }
    forwarded_set(&set);
    if (sigprocmask(SIG_BLOCK, &set, &old_mask) < 0) {
        usr_fail("sigprocmask");
        usr_report();
        return EXIT_RUNTIME;
    }
    pid_t caller = getppid();
    if (start_mappers(spec, &old_mask) < 0 || enter_namespaces(spec) < 0 || sync_with_caller(spec) < 0 ||
        tie_to_caller(caller) < 0) {
        usr_report();
        return EXIT_RUNTIME;
    }
    pid_t init = fork();
    if (init < 0) {
        usr_fail("fork the container init");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (init == 0)
        _exit(run_init(spec, &old_mask));
    return supervise(init);
}

/* hpcbox-userns: the user namespace (entered, its ids mapped directly or through
 * newuidmap/newgidmap), and the seccomp filter for ownership changes to ids it does not map. */
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
int start_mappers(struct usr_spec *spec, const sigset_t *old_mask)
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

int enter_namespaces(struct usr_spec *spec)
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
int sync_with_caller(const struct usr_spec *spec)
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

int install_chown_filter(void)
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

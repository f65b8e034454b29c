/* hpcbox-ptrace-mini: a first, minimal seccomp+ptrace tracer (issue 5), x86_64 only.
 *
 *   hpcbox-ptrace-mini [-b GUEST:HOST]... ROOTFS PROGRAM [ARGS...]
 *
 * Runs PROGRAM (a guest path) with ROOTFS as its "/". A seccomp filter stops the tracee only on
 * the path syscalls below; the tracer reads the path from the tracee, translates it with the
 * shared guestpath core, writes the host path below the tracee's stack red zone with
 * process_vm_writev and points the argument at it. Translation errors (ENOENT, ENOTDIR, ELOOP)
 * skip the syscall and return the errno. Children, threads and exec are followed.
 *
 * getcwd is stopped twice (seccomp, then its syscall exit) and its result mapped back to the guest.
 *
 * NOT wired into hpcbox: a test bed for the engine. Missing on purpose for now: readlink of
 * /proc/self/{cwd,exe} and other reverse translations (the guest sees host paths there), the guest's ELF interpreter on execve
 * (static programs only), #! scripts through the guest, the rest of the path syscalls
 * (*xattr, link, rename, unlink, mkdir, chmod, ...), root emulation, group-stop semantics, a
 * scratch page of our own (the red zone trick assumes the stack has room below rsp).
 */
#define _GNU_SOURCE
#include "guestpath.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __x86_64__
#error "hpcbox-ptrace-mini knows the x86_64 syscall table only"
#endif

#define RED_ZONE 128

/* How a traced syscall carries its path: register index of dirfd (-1: none, AT_FDCWD) and of the
 * path, and where its "do not follow the final link" flag is. */
enum follow_rule { FOLLOW, NOFOLLOW, OPEN_FLAGS, AT_FLAGS };

struct path_call {
    long nr;
    int dirfd_arg;
    int path_arg;
    enum follow_rule follow;
    int flags_arg;
};

static const struct path_call CALLS[] = {
    {SYS_open, -1, 0, OPEN_FLAGS, 1},
    {SYS_openat, 0, 1, OPEN_FLAGS, 2},
    {SYS_stat, -1, 0, FOLLOW, -1},
    {SYS_lstat, -1, 0, NOFOLLOW, -1},
    {SYS_newfstatat, 0, 1, AT_FLAGS, 3},
    {SYS_statx, 0, 1, AT_FLAGS, 2},
    {SYS_access, -1, 0, FOLLOW, -1},
    {SYS_faccessat, 0, 1, FOLLOW, -1},
    {SYS_faccessat2, 0, 1, AT_FLAGS, 3},
    {SYS_readlink, -1, 0, NOFOLLOW, -1},
    {SYS_readlinkat, 0, 1, NOFOLLOW, -1},
    {SYS_chdir, -1, 0, FOLLOW, -1},
    {SYS_execve, -1, 0, FOLLOW, -1},
};
#define N_CALLS (sizeof(CALLS) / sizeof(CALLS[0]))

static unsigned long long *arg_reg(struct user_regs_struct *r, int i)
{
    switch (i) {
    case 0: return &r->rdi;
    case 1: return &r->rsi;
    case 2: return &r->rdx;
    case 3: return &r->r10;
    case 4: return &r->r8;
    default: return &r->r9;
    }
}

static int install_filter(void)
{
    struct sock_filter prog[4 + 2 * N_CALLS + 2 + 1];
    size_t n = 0;

    prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (size_t i = 0; i < N_CALLS; i++) {
        prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)CALLS[i].nr, 0, 1);
        prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    }
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getcwd, 0, 1);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

    struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
        return -errno;
    return 0;
}

/* Read a NUL-terminated string from the tracee, page by page (a read may not cross into an
 * unmapped page). */
static int read_tracee_string(pid_t pid, unsigned long long addr, char *buf, size_t size)
{
    size_t got = 0;

    while (got < size) {
        size_t chunk = 4096 - ((addr + got) & 4095);
        struct iovec local, remote;
        ssize_t n;

        if (chunk > size - got)
            chunk = size - got;
        local = (struct iovec){buf + got, chunk};
        remote = (struct iovec){(void *)(uintptr_t)(addr + got), chunk};
        n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n <= 0)
            return n < 0 ? -errno : -EFAULT;
        if (memchr(buf + got, '\0', (size_t)n))
            return 0;
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

static int write_tracee(pid_t pid, unsigned long long addr, const void *data, size_t len)
{
    struct iovec local = {(void *)data, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);

    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

/* The guest cwd of pid, from the host cwd the kernel keeps. 1 when it lies outside the guest. */
static int guest_cwd(const struct gp_context *ctx, pid_t pid, char *out, size_t size)
{
    char link[64], host[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
    n = readlink(link, host, sizeof(host) - 1);
    if (n < 0)
        return -errno;
    host[n] = '\0';
    return gp_to_guest(ctx, host, out, size);
}

static int follows(const struct path_call *c, struct user_regs_struct *r)
{
    switch (c->follow) {
    case FOLLOW:
        return GP_FOLLOW_LAST;
    case NOFOLLOW:
        return 0;
    case OPEN_FLAGS: {
        unsigned long long f = *arg_reg(r, c->flags_arg);

        return (f & O_NOFOLLOW) || ((f & O_CREAT) && (f & O_EXCL)) ? 0 : GP_FOLLOW_LAST;
    }
    case AT_FLAGS:
        return (*arg_reg(r, c->flags_arg) & AT_SYMLINK_NOFOLLOW) ? 0 : GP_FOLLOW_LAST;
    }
    return GP_FOLLOW_LAST;
}

/* A seccomp stop: translate the path argument in place, or fail the syscall with its errno. */
static int handle_seccomp(struct gp_context *ctx, pid_t pid, enum __ptrace_request *resume)
{
    struct user_regs_struct r;
    const struct path_call *c = NULL;
    char guest[PATH_MAX], host[PATH_MAX];
    unsigned long long *path_reg, dst;
    size_t len;
    int rc;

    if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
        return -errno;
    if ((long)r.orig_rax == SYS_getcwd) {
        *resume = PTRACE_SYSCALL; /* stop again at its exit to rewrite the result */
        return 0;
    }
    for (size_t i = 0; i < N_CALLS; i++)
        if ((long)r.orig_rax == CALLS[i].nr)
            c = &CALLS[i];
    if (!c)
        return 0;
    path_reg = arg_reg(&r, c->path_arg);
    if (*path_reg == 0)
        return 0; /* NULL: let the kernel say EFAULT */
    rc = read_tracee_string(pid, *path_reg, guest, sizeof(guest));
    if (rc < 0)
        return 0; /* unreadable: the kernel gives the same error on the original pointer */
    if (guest[0] != '/') {
        char cwd[PATH_MAX];

        if (guest[0] == '\0')
            return 0; /* "" (AT_EMPTY_PATH or ENOENT): nothing to translate */
        if (c->dirfd_arg >= 0 && (int)*arg_reg(&r, c->dirfd_arg) != AT_FDCWD)
            return 0; /* relative to a real directory fd: the kernel resolves it */
        rc = guest_cwd(ctx, pid, cwd, sizeof(cwd));
        if (rc != 0)
            return 0; /* cwd outside the guest: leave the path alone */
        rc = gp_set_cwd(ctx, cwd);
        if (rc < 0)
            return rc;
    }
    rc = gp_to_host(ctx, guest, follows(c, &r), host, sizeof(host));
    if (rc < 0) {
        r.orig_rax = (unsigned long long)-1; /* skip the syscall ... */
        r.rax = (unsigned long long)(long)rc; /* ... and return the translation's errno */
        return ptrace(PTRACE_SETREGS, pid, 0, &r) < 0 ? -errno : 0;
    }
    len = strlen(host) + 1;
    dst = (r.rsp - RED_ZONE - len) & ~15ULL;
    rc = write_tracee(pid, dst, host, len);
    if (rc < 0)
        return rc;
    *path_reg = dst;
    return ptrace(PTRACE_SETREGS, pid, 0, &r) < 0 ? -errno : 0;
}

/* The syscall-exit stop of a getcwd (the only syscall resumed with PTRACE_SYSCALL): the kernel
 * wrote a host path; replace it with the guest path when it lies inside the guest. */
static int handle_getcwd_exit(const struct gp_context *ctx, pid_t pid)
{
    struct user_regs_struct r;
    char host[PATH_MAX], guest[PATH_MAX];
    long ret;
    size_t len;

    if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
        return -errno;
    ret = (long)r.rax;
    if ((long)r.orig_rax != SYS_getcwd || ret <= 0 || ret > PATH_MAX)
        return 0;
    if (read_tracee_string(pid, r.rdi, host, sizeof(host)) < 0)
        return 0;
    if (gp_to_guest(ctx, host, guest, sizeof(guest)) != 0)
        return 0; /* outside the guest (or unreadable): the host path stays, as PRoot does */
    len = strlen(guest) + 1;
    if (len > r.rsi) {
        r.rax = (unsigned long long)-ERANGE;
    } else {
        int rc = write_tracee(pid, r.rdi, guest, len);

        if (rc < 0)
            return rc;
        r.rax = len;
    }
    return ptrace(PTRACE_SETREGS, pid, 0, &r) < 0 ? -errno : 0;
}

static int trace_loop(struct gp_context *ctx, pid_t first)
{
    int exit_code = 0;

    for (;;) {
        int status, sig = 0, event;
        enum __ptrace_request resume = PTRACE_CONT;
        pid_t pid = waitpid(-1, &status, __WALL);

        if (pid < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                return exit_code;
            perror("hpcbox-ptrace-mini: waitpid");
            return 125;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (pid == first)
                exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            continue;
        }
        if (!WIFSTOPPED(status))
            continue;
        event = status >> 16;
        if (event == PTRACE_EVENT_SECCOMP) {
            int rc = handle_seccomp(ctx, pid, &resume);

            if (rc < 0 && rc != -ESRCH)
                fprintf(stderr, "hpcbox-ptrace-mini: pid %d: %s\n", (int)pid, strerror(-rc));
        } else if (event == 0 && WSTOPSIG(status) == (SIGTRAP | 0x80)) {
            int rc = handle_getcwd_exit(ctx, pid);

            if (rc < 0 && rc != -ESRCH)
                fprintf(stderr, "hpcbox-ptrace-mini: pid %d: getcwd: %s\n", (int)pid, strerror(-rc));
        } else if (event == 0) {
            sig = WSTOPSIG(status);
            if (sig == SIGSTOP || sig == SIGTRAP)
                sig = 0; /* the stop of a new tracee, or ours: not the program's */
        }
        if (ptrace(resume, pid, 0, (void *)(long)sig) < 0 && errno != ESRCH)
            perror("hpcbox-ptrace-mini: resume");
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: hpcbox-ptrace-mini [-b GUEST:HOST]... ROOTFS PROGRAM [ARGS...]\n");
}

int main(int argc, char **argv)
{
    struct gp_context ctx;
    int opt, rc;
    pid_t child;

    if (argc < 3) {
        usage();
        return 125;
    }
    /* Bindings need the context, which needs ROOTFS: collect them after it is known. */
    opterr = 0;
    {
        int i = 1;

        while (i < argc && strcmp(argv[i], "-b") == 0)
            i += 2;
        if (i + 1 >= argc) {
            usage();
            return 125;
        }
        rc = gp_context_init(&ctx, argv[i]);
        if (rc < 0) {
            fprintf(stderr, "hpcbox-ptrace-mini: rootfs %s: %s\n", argv[i], strerror(-rc));
            return 125;
        }
    }
    while ((opt = getopt(argc, argv, "+b:")) != -1) {
        char *colon = opt == 'b' ? strchr(optarg, ':') : NULL;

        if (!colon) {
            fprintf(stderr, "hpcbox-ptrace-mini: unknown option, or -b without GUEST:HOST\n");
            usage();
            return 125;
        }
        *colon = '\0';
        rc = gp_add_binding(&ctx, optarg, colon + 1);
        if (rc < 0) {
            fprintf(stderr, "hpcbox-ptrace-mini: binding %s:%s: %s\n", optarg, colon + 1, strerror(-rc));
            return 125;
        }
    }
    optind++; /* ROOTFS, already used */

    child = fork();
    if (child < 0) {
        perror("hpcbox-ptrace-mini: fork");
        return 125;
    }
    if (child == 0) {
        if (chdir(ctx.root) < 0 || ptrace(PTRACE_TRACEME, 0, 0, 0) < 0 || raise(SIGSTOP) != 0 ||
            install_filter() < 0) {
            perror("hpcbox-ptrace-mini: child setup");
            _exit(125);
        }
        execv(argv[optind], argv + optind); /* stopped by the filter and translated */
        fprintf(stderr, "hpcbox-ptrace-mini: %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    {
        int status;

        if (waitpid(child, &status, 0) < 0 || !WIFSTOPPED(status)) {
            fprintf(stderr, "hpcbox-ptrace-mini: the child did not stop for tracing\n");
            return 125;
        }
        if (ptrace(PTRACE_SETOPTIONS, child, 0,
                   (void *)(long)(PTRACE_O_TRACESECCOMP | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                                  PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL |
                                  PTRACE_O_TRACESYSGOOD)) < 0 ||
            ptrace(PTRACE_CONT, child, 0, 0) < 0) {
            perror("hpcbox-ptrace-mini: ptrace setup");
            kill(child, SIGKILL);
            return 125;
        }
    }
    rc = trace_loop(&ctx, child);
    gp_context_destroy(&ctx);
    return rc;
}

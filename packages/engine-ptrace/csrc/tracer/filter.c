/* filter: the seccomp-BPF program. SECCOMP_RET_TRACE only for the table's syscalls this
 * configuration needs. Of the *at() calls relative to a real directory fd, only reads that follow
 * no final symlink run untraced (what find and tar -c make by the thousand: fstatat with
 * AT_SYMLINK_NOFOLLOW or AT_EMPTY_PATH, openat read-only with O_NOFOLLOW, readlinkat, futimens),
 * unless --trace-dirfd; every write and every followed name stops, so that an absolute symlink or
 * ".." on the way resolves in the guest (paths.c). A dirfd from cfg->reserved_fd up (a guest
 * directory above a binding, moved there by relocate.c) always stops.
 *
 * Under root emulation the stat calls by descriptor (fstat, and newfstatat/statx by a real dirfd)
 * must show the ownership record's owners once there is one, but until then stopping on them
 * costs a stop per file of find or tar. So they are in a second, small filter (the owners filter)
 * that a process gets only once the container's record holds something: at the start when it
 * does, else injected by the tracer (tracer.c) at the process's first chown and at the next stop
 * of every other process after a record appeared. Filters are inherited and never removed. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define X32_BIT 0x40000000u
#define FILTER_BLOCK_MAX 12

bool filter_traces(const struct tracer_config *cfg, const struct sc_desc *d)
{
    if (sc_native_nr(d) == SC_NONE)
        return false;
    switch (d->kind) {
    case SK_IDS:
        return cfg->emulate_ids;
    case SK_UNAME:
        return cfg->hostname != NULL;
    case SK_CHOWN:
    case SK_STAT:
        return d->p[0].path >= 0 || cfg->emulate_ids; /* fchown, fstat have no path (fstat: owners filter) */
    default:
        return true;
    }
}

bool filter_fast_dirfd(const struct tracer_config *cfg, const struct sc_desc *d)
{
    if (!d->fast_dirfd || cfg->trace_dirfd)
        return false;
    if (cfg->emulate_ids && (d->kind == SK_CHOWN || d->kind == SK_MKNOD))
        return false; /* the emulation must see them all (stat by dirfd: the owners filter) */
    return true;
}

bool filter_owners_only(const struct sc_desc *d)
{
    return d->kind == SK_STAT && d->p[0].path < 0; /* fstat */
}

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (unsigned)(i) * sizeof(__u64))
#define ARG_HI(i) (ARG_LO(i) + sizeof(__u32))
#define OPEN_WRITES (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

static bool relocating(const struct tracer_config *cfg)
{
    return cfg->reserved_fd > 0 && !cfg->trace_dirfd;
}

/* Which calls of a fast_dirfd syscall with a real dirfd may run untraced. */
enum fast_kind { FAST_NONE, FAST_STAT, FAST_OPEN, FAST_ALWAYS, FAST_NULL_PATH };

static enum fast_kind fast_kind(const struct sc_desc *d)
{
    if (d->kind == SK_STAT && d->p[0].flags >= 0)
        return FAST_STAT;           /* newfstatat, statx: AT_EMPTY_PATH or AT_SYMLINK_NOFOLLOW */
    if (d->p[0].follow == F_OPEN)
        return FAST_OPEN;           /* openat: read-only and O_NOFOLLOW */
    if (d->kind == SK_READLINK)
        return FAST_ALWAYS;         /* readlinkat: reads, never follows the last component */
    if (strcmp(d->name, "utimensat") == 0)
        return FAST_NULL_PATH;      /* futimens: utimensat(fd, NULL, ...) */
    return FAST_NONE;
}

/* The block of one syscall: SECCOMP_RET_TRACE or _ALLOW when nr matches, else on to the next. */
static size_t block(const struct tracer_config *cfg, const struct sc_desc *d, struct sock_filter *b)
{
    unsigned nr = (unsigned)sc_native_nr(d), dirfd = ARG_LO(d->p[0].dirfd), flags, path;
    /* dirfds from reserved_fd up always stop (relocate.c); AT_FDCWD is tested before */
    unsigned reserved = relocating(cfg) ? (unsigned)cfg->reserved_fd : 0x7fffffffu;
    enum fast_kind kind = filter_fast_dirfd(cfg, d) ? fast_kind(d) : FAST_NONE;
    size_t n = 0;

    switch (kind) {
    case FAST_STAT:
        flags = ARG_LO(d->p[0].flags);
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 7);
        b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, dirfd);
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)AT_FDCWD, 4, 0);
        b[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, reserved, 3, 0);
        b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, flags);
        b[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, 1);
        break;
    case FAST_OPEN:
        flags = ARG_LO(d->p[0].flags);
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 8);
        b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, dirfd);
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)AT_FDCWD, 5, 0);
        b[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, reserved, 4, 0);
        b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, flags);
        b[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, OPEN_WRITES, 2, 0);
        b[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, O_NOFOLLOW, 0, 1);
        break;
    case FAST_ALWAYS:
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 5);
        b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, dirfd);
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)AT_FDCWD, 1, 0);
        b[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, reserved, 0, 1);
        break;
    case FAST_NULL_PATH:
        path = ARG_LO(d->p[0].path);
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 6);
        b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, path);
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3);
        b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, path + sizeof(__u32));
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
        break;
    case FAST_NONE:
        b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
        b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
        return n;
    }
    if (kind == FAST_ALWAYS) {
        b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
        b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    } else {
        b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    }
    return n;
}

/* dup(fd) and fcntl(fd, F_DUPFD or F_DUPFD_CLOEXEC, n) of a descriptor in the reserved range stop,
 * so that the copy lands in the range too (relocate.c); dup2 and dup3 name their number. */
static size_t dup_blocks(const struct tracer_config *cfg, struct sock_filter *b)
{
    unsigned reserved = (unsigned)cfg->reserved_fd;
    size_t n = 0;

    b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, TRACER_NR_FCNTL, 0, 7);
    b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
    b[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, reserved, 0, 4);
    b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1));
    b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD, 1, 0);
    b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD_CLOEXEC, 0, 1);
    b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    b[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, TRACER_NR_DUP, 0, 3);
    b[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
    b[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, reserved, 0, 1);
    b[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    return n; /* falls through to the final ALLOW */
}

int filter_build(const struct tracer_config *cfg, struct sock_filter *prog, size_t cap)
{
    size_t n = 0;

#define EMIT(insn)                \
    do {                          \
        if (n >= cap)             \
            return -ENOSPC;       \
        prog[n++] = (insn);       \
    } while (0)

    EMIT(STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    EMIT(JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch_audit(), 1, 0));
    EMIT(STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS)); /* other ABIs (i386): not supported */
    EMIT(STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
    EMIT(JUMP(BPF_JMP | BPF_JSET | BPF_K, X32_BIT, 0, 1));
    EMIT(STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS)); /* x32: not supported */
#endif
    for (unsigned i = 0; i < SYSCALLS_COUNT; i++) {
        struct sock_filter b[FILTER_BLOCK_MAX];
        size_t len;

        if (!filter_traces(cfg, &SYSCALLS[i]) || filter_owners_only(&SYSCALLS[i]))
            continue;
        len = block(cfg, &SYSCALLS[i], b);
        for (size_t k = 0; k < len; k++)
            EMIT(b[k]);
        /* the accumulator holds nr again for the next block */
        if (len > 2)
            EMIT(STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
    }
    if (relocating(cfg)) {
        struct sock_filter b[FILTER_BLOCK_MAX];
        size_t len = dup_blocks(cfg, b);

        for (size_t k = 0; k < len; k++)
            EMIT(b[k]);
    }
    EMIT(STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
#undef EMIT
    return (int)n;
}

int filter_build_owners(struct sock_filter *prog, size_t cap)
{
    static const char *const stats[] = {"fstat", "newfstatat", "statx"};
    size_t n = 0;

    if (cap < 4 + 2 * sizeof(stats) / sizeof(stats[0]))
        return -ENOSPC;
    /* other ABIs: the main filter's ENOSYS */
    prog[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch_audit(), 1, 0);
    prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    prog[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
        int nr = sc_native_nr(sc_by_name(stats[i]));

        if (nr == SC_NONE)
            continue;
        /* every call: those by path stop in the main filter already (one stop either way) */
        prog[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
        prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    }
    prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    return (int)n;
}

static int install(const struct sock_filter *prog, int n)
{
    struct sock_fprog fprog = {.len = (unsigned short)n, .filter = (struct sock_filter *)prog};

    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
        return -errno;
    return 0;
}

bool filter_available(void)
{
    /* Asks the kernel whether filters may return SECCOMP_RET_TRACE (Linux 4.14+). Fails where the
     * kernel has no seccomp filters, or where a policy around us (a container runtime's seccomp
     * profile) refuses the seccomp syscall itself: either way no filter could be installed. */
    __u32 action = SECCOMP_RET_TRACE;

    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

int filter_install(const struct tracer_config *cfg, bool owners)
{
    struct sock_filter prog[8 + (FILTER_BLOCK_MAX + 1) * 128];
    int n = filter_build(cfg, prog, sizeof(prog) / sizeof(prog[0])), rc;

    if (n < 0)
        return n;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    rc = install(prog, n);
    if (rc < 0 || !owners)
        return rc;
    n = filter_build_owners(prog, sizeof(prog) / sizeof(prog[0]));
    return n < 0 ? n : install(prog, n);
}

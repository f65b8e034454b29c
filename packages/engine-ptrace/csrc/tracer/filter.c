/* filter: the seccomp-BPF program. SECCOMP_RET_TRACE only for the table's syscalls this
 * configuration needs; *at() calls relative to a real directory fd run untraced unless
 * --trace-dirfd (their relative paths resolve from a directory already inside the guest). */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define X32_BIT 0x40000000u

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
        return d->p[0].path >= 0 || cfg->emulate_ids; /* fchown, fstat have no path */
    default:
        return true;
    }
}

bool filter_fast_dirfd(const struct tracer_config *cfg, const struct sc_desc *d)
{
    if (!d->fast_dirfd || cfg->trace_dirfd)
        return false;
    if (cfg->emulate_ids && (d->kind == SK_CHOWN || d->kind == SK_MKNOD || d->kind == SK_STAT))
        return false; /* the emulation must see them all (a stat by dirfd shows owners too) */
    return true;
}

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))

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
        const struct sc_desc *d = &SYSCALLS[i];

        if (!filter_traces(cfg, d))
            continue;
        if (filter_fast_dirfd(cfg, d)) {
            /* nr == d: trace only when the dirfd argument is AT_FDCWD (its low 32 bits) */
            EMIT(JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)sc_native_nr(d), 0, 4));
            EMIT(STMT(BPF_LD | BPF_W | BPF_ABS,
                      offsetof(struct seccomp_data, args) + (unsigned)d->p[0].dirfd * sizeof(__u64)));
            EMIT(JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)AT_FDCWD, 0, 1));
            EMIT(STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
            EMIT(STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        } else {
            EMIT(JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)sc_native_nr(d), 0, 1));
            EMIT(STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE));
        }
    }
    EMIT(STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
#undef EMIT
    return (int)n;
}

bool filter_available(void)
{
    /* Asks the kernel whether filters may return SECCOMP_RET_TRACE (Linux 4.14+). Fails where the
     * kernel has no seccomp filters, or where a policy around us (a container runtime's seccomp
     * profile) refuses the seccomp syscall itself: either way no filter could be installed. */
    __u32 action = SECCOMP_RET_TRACE;

    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

int filter_install(const struct tracer_config *cfg)
{
    struct sock_filter prog[8 + 5 * 128];
    struct sock_fprog fprog;
    int n = filter_build(cfg, prog, sizeof(prog) / sizeof(prog[0]));

    if (n < 0)
        return n;
    fprog = (struct sock_fprog){.len = (unsigned short)n, .filter = prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
        return -errno;
    return 0;
}

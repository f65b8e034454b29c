/* relocate: descriptors of guest directories above a binding live in a reserved range.
 *
 * The seccomp filter lets a read relative to a real directory descriptor run untraced (filter.c):
 * the kernel resolves the name in the directory itself. That is right everywhere but in a guest
 * directory above a binding (a volume, or /proc /dev /sys): there the rootfs holds only an empty
 * mount point, so openat(fd_of_root, "vol") would see that and not the volume. Descriptors of such
 * directories are moved to numbers from reserved_fd up, and the filter stops every *at() call with
 * a dirfd there, so that the tracer translates it (paths.c). Every other dirfd stays on the fast
 * path; a program's own descriptor that lands in the range only makes its calls slower.
 *
 * The move happens at the exit of the open that returned the descriptor: the tracee is rewound
 * to run fcntl(fd, F_DUPFD or F_DUPFD_CLOEXEC as fd had, reserved_fd), then close(fd), and the
 * open then returns the copy. Copies made with dup or fcntl(F_DUPFD*) of a descriptor in the range
 * land in the range too (gnulib's fts, which find uses, reads a directory through such a copy);
 * dup2 and dup3 name their number and are left alone. A signal that arrives meanwhile is held back and sent again at the
 * end, so that no handler runs in the middle of the chain. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RESERVED_SIZE 64    /* descriptors below the (capped) soft limit that are reserved */
#define RESERVED_CAP 1024   /* never above this: the kernel sizes fd tables by the highest fd */

enum reloc_step {
    RELOC_NONE,
    RELOC_OPEN_EXIT,    /* the open's exit: its descriptor */
    RELOC_DUP_ENTRY,    /* the injected fcntl(F_DUPFD) */
    RELOC_DUP_EXIT,
    RELOC_CLOSE_ENTRY,  /* the injected close of the original */
    RELOC_CLOSE_EXIT,
};

int relocate_floor(void)
{
    struct rlimit rl;
    rlim_t soft;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    soft = rl.rlim_cur < RESERVED_CAP ? rl.rlim_cur : RESERVED_CAP;
    if (soft < 2 * RESERVED_SIZE)
        return 0; /* too few descriptors to set some apart: the fast path as before */
    return (int)(soft - RESERVED_SIZE);
}

/* Whether the guest directory at canonical host path host lies above a binding (or is "/"). */
static bool above_binding(const struct gp_context *gp, const char *host)
{
    char guest[PATH_MAX];
    size_t n;

    if (gp->n_bindings == 0 || gp_to_guest(gp, host, guest, sizeof(guest)) != 0)
        return false;
    n = strlen(guest);
    if (n == 1 && guest[0] == '/')
        return true;
    for (size_t i = 0; i < gp->n_bindings; i++) {
        const struct gp_binding *b = &gp->bindings[i];

        if (b->guest_len > n && strncmp(b->guest, guest, n) == 0 && b->guest[n] == '/')
            return true;
    }
    return false;
}

void relocate_arrange(struct tracer *t, struct stop *s)
{
    unsigned f = s->sc->p[0].follow;

    if (!t->cfg.seccomp || t->cfg.trace_dirfd || t->cfg.reserved_fd <= 0 || !s->have_host || s->skip)
        return;
    if (s->sc->kind != SK_PATH || (f != F_OPEN && f != F_OPENHOW))
        return;
    if (!above_binding(chroot_gp(t, s->tid), s->host))
        return;
    s->proc->reloc_step = RELOC_OPEN_EXIT;
    s->want_exit = true;
}

/* FD_CLOEXEC of tid's descriptor fd (/proc/TID/fdinfo/FD "flags:" holds O_CLOEXEC). */
static bool fd_cloexec(pid_t tid, int fd)
{
    char path[64], line[128];
    bool cloexec = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)tid, fd);
    if (!(f = fopen(path, "re")))
        return false;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "flags:", 6) == 0) {
            cloexec = (strtoul(line + 6, NULL, 8) & O_CLOEXEC) != 0;
            break;
        }
    fclose(f);
    return cloexec;
}

/* Where tid stands: 1 at a syscall exit, 0 at an entry, -1 unknown. */
static int at_exit(pid_t tid)
{
    struct __ptrace_syscall_info info;

    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof(info), &info) < 0)
        return -1;
    if (info.op == PTRACE_SYSCALL_INFO_EXIT)
        return 1;
    return info.op == PTRACE_SYSCALL_INFO_ENTRY ? 0 : -1;
}

/* Rewind p (at a syscall exit) to run nr(a0, a1, a2) from the registers of the open's exit. */
static bool inject(struct proc *p, long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
    struct regs r = p->saved;

    regs_restart(&r, nr);
    regs_set_arg(&r, 0, a0);
    regs_set_arg(&r, 1, a1);
    regs_set_arg(&r, 2, a2);
    return regs_set(p->tid, &r) == 0;
}

/* The end: the open returns ret, and the held-back signals go out again. */
static void finish(struct proc *p, long ret)
{
    struct regs r = p->saved;

    regs_set_ret(&r, ret);
    if (regs_set(p->tid, &r) < 0 && errno != ESRCH)
        fprintf(stderr, "hpcbox-ptrace: moving a descriptor of process %d: %s\n", (int)p->tid, strerror(errno));
    p->reloc_step = RELOC_NONE;
    for (int sig = 1; sig <= 64 && p->reloc_signals; sig++)
        if (p->reloc_signals & (1ULL << (sig - 1))) {
            p->reloc_signals &= ~(1ULL << (sig - 1));
            if (syscall(SYS_tkill, p->tid, sig) < 0 && errno != ESRCH)
                fprintf(stderr, "hpcbox-ptrace: sending signal %d to %d again: %s\n", sig, (int)p->tid,
                        strerror(errno));
        }
}

bool relocate_stop(struct tracer *t, struct proc *p)
{
    struct regs r;
    int exit = at_exit(p->tid);
    enum reloc_step step = (enum reloc_step)p->reloc_step;

    if (regs_get(p->tid, &r) < 0) {
        p->reloc_step = RELOC_NONE;
        return false;
    }
    switch (step) {
    case RELOC_OPEN_EXIT: {
        long fd = regs_ret(&r);

        p->reloc_step = RELOC_NONE;
        if (exit != 1 || fd < 0 || fd >= t->cfg.reserved_fd)
            return false;
        p->saved = r;
        p->reloc_fd = (int)fd;
        if (!inject(p, TRACER_NR_FCNTL, (uint64_t)fd, fd_cloexec(p->tid, (int)fd) ? F_DUPFD_CLOEXEC : F_DUPFD,
                    (uint64_t)t->cfg.reserved_fd))
            return false;
        p->reloc_step = RELOC_DUP_ENTRY;
        return true;
    }
    case RELOC_DUP_ENTRY:
    case RELOC_CLOSE_ENTRY:
        if (exit != 0) { /* cannot happen with the signals held back: give the open its descriptor */
            finish(p, p->reloc_fd);
            return false;
        }
        p->reloc_step = step + 1;
        return true;
    case RELOC_DUP_EXIT:
        p->reloc_new = (int)regs_ret(&r);
        if (exit != 1 || p->reloc_new < 0) {
            finish(p, p->reloc_fd); /* no room in the range (RLIMIT_NOFILE lowered): as it was */
            return false;
        }
        if (!inject(p, TRACER_NR_CLOSE, (uint64_t)p->reloc_fd, 0, 0)) {
            finish(p, p->reloc_new); /* the original stays open */
            return false;
        }
        p->reloc_step = RELOC_CLOSE_ENTRY;
        return true;
    case RELOC_CLOSE_EXIT:
        finish(p, p->reloc_new);
        return false;
    case RELOC_NONE:
        break;
    }
    return false;
}

bool relocate_dup(const struct tracer *t, struct regs *r)
{
    long nr = regs_nr(r), reserved = t->cfg.reserved_fd;
    long fd = (int)regs_arg(r, 0);

    if (reserved <= 0 || t->cfg.trace_dirfd || fd < reserved)
        return false;
    if (nr == TRACER_NR_DUP) {
        regs_set_nr(r, TRACER_NR_FCNTL);
        regs_set_arg(r, 1, F_DUPFD);
        regs_set_arg(r, 2, (uint64_t)reserved);
        return true;
    }
    if (nr != TRACER_NR_FCNTL || ((int)regs_arg(r, 1) != F_DUPFD && (int)regs_arg(r, 1) != F_DUPFD_CLOEXEC))
        return false;
    if ((long)(int)regs_arg(r, 2) >= reserved)
        return false;
    regs_set_arg(r, 2, (uint64_t)reserved);
    return true;
}

bool relocate_defer_signal(struct proc *p, int sig)
{
    if (p->reloc_step == RELOC_NONE || p->reloc_step == RELOC_OPEN_EXIT || sig < 1 || sig > 64)
        return false;
    p->reloc_signals |= 1ULL << (sig - 1);
    return true;
}

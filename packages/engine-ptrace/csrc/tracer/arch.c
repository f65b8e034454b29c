/* arch: register access at syscall stops (see arch.h). */
#define _GNU_SOURCE
#include "arch.h"

#include <elf.h>
#include <errno.h>
#include <linux/audit.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#if defined(__x86_64__)

uint32_t arch_audit(void)
{
    return AUDIT_ARCH_X86_64;
}

int regs_get(pid_t tid, struct regs *regs)
{
    return ptrace(PTRACE_GETREGS, tid, 0, &regs->r) < 0 ? -errno : 0;
}

int regs_set(pid_t tid, struct regs *regs)
{
    return ptrace(PTRACE_SETREGS, tid, 0, &regs->r) < 0 ? -errno : 0;
}

long regs_nr(const struct regs *regs)
{
    return (long)regs->r.orig_rax;
}

void regs_set_nr(struct regs *regs, long nr)
{
    regs->r.orig_rax = (unsigned long long)nr;
}

static unsigned long long *arg_slot(struct regs *regs, int i)
{
    switch (i) {
    case 0: return &regs->r.rdi;
    case 1: return &regs->r.rsi;
    case 2: return &regs->r.rdx;
    case 3: return &regs->r.r10;
    case 4: return &regs->r.r8;
    default: return &regs->r.r9;
    }
}

uint64_t regs_arg(const struct regs *regs, int i)
{
    return *arg_slot((struct regs *)regs, i);
}

void regs_set_arg(struct regs *regs, int i, uint64_t value)
{
    *arg_slot(regs, i) = value;
}

long regs_ret(const struct regs *regs)
{
    return (long)regs->r.rax;
}

void regs_set_ret(struct regs *regs, long value)
{
    regs->r.rax = (unsigned long long)value;
}

uint64_t regs_sp(const struct regs *regs)
{
    return regs->r.rsp;
}

void regs_restart(struct regs *regs, long nr)
{
    regs->r.rip -= 2; /* "syscall" is 0f 05 */
    regs->r.rax = (unsigned long long)nr;
    regs->r.orig_rax = (unsigned long long)nr;
}

#elif defined(__aarch64__)

uint32_t arch_audit(void)
{
    return AUDIT_ARCH_AARCH64;
}

int regs_get(pid_t tid, struct regs *regs)
{
    struct iovec io = {&regs->r, sizeof(regs->r)};
    int nr = 0;
    struct iovec nio = {&nr, sizeof(nr)};

    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &io) < 0)
        return -errno;
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_ARM_SYSTEM_CALL, &nio) < 0)
        return -errno;
    regs->nr = nr;
    regs->nr_changed = 0;
    return 0;
}

int regs_set(pid_t tid, struct regs *regs)
{
    struct iovec io = {&regs->r, sizeof(regs->r)};

    if (regs->nr_changed) {
        int nr = (int)regs->nr;
        struct iovec nio = {&nr, sizeof(nr)};

        if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_ARM_SYSTEM_CALL, &nio) < 0)
            return -errno;
    }
    return ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &io) < 0 ? -errno : 0;
}

long regs_nr(const struct regs *regs)
{
    return regs->nr;
}

void regs_set_nr(struct regs *regs, long nr)
{
    regs->nr = nr;
    regs->nr_changed = 1;
}

uint64_t regs_arg(const struct regs *regs, int i)
{
    return regs->r.regs[i];
}

void regs_set_arg(struct regs *regs, int i, uint64_t value)
{
    regs->r.regs[i] = value;
}

long regs_ret(const struct regs *regs)
{
    return (long)regs->r.regs[0];
}

void regs_set_ret(struct regs *regs, long value)
{
    regs->r.regs[0] = (uint64_t)value;
}

uint64_t regs_sp(const struct regs *regs)
{
    return regs->r.sp;
}

void regs_restart(struct regs *regs, long nr)
{
    regs->r.pc -= 4; /* "svc #0"; x8 still holds the number, x0 the first argument */
    regs->r.regs[8] = (uint64_t)nr;
    regs->nr = nr;
    regs->nr_changed = 1;
}

#endif

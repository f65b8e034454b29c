/* arch: the tracee's registers at a syscall stop, for one architecture at a time.
 *
 * Everything else in the tracer speaks of "syscall number", "argument i", "return value" and
 * "stack pointer" through these functions; porting to another architecture means a new
 * implementation in arch.c and its column of numbers in syscalls.c. */
#ifndef HPCBOX_TRACER_ARCH_H
#define HPCBOX_TRACER_ARCH_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#if defined(__x86_64__)
#define TRACER_ARCH_NAME "x86_64"
#define TRACER_RED_ZONE 128
#define TRACER_NR_PRCTL 157
#define TRACER_NR_BRK 12
#define TRACER_NR_SECCOMP 317
#define TRACER_NR_FCNTL 72
#define TRACER_NR_CLOSE 3
#define TRACER_NR_DUP 32
struct regs {
    struct user_regs_struct r;
};
#elif defined(__aarch64__)
#define TRACER_ARCH_NAME "aarch64"
#define TRACER_RED_ZONE 0
#define TRACER_NR_PRCTL 167
#define TRACER_NR_BRK 214
#define TRACER_NR_SECCOMP 277
#define TRACER_NR_FCNTL 25
#define TRACER_NR_CLOSE 57
#define TRACER_NR_DUP 23
struct regs {
    struct user_regs_struct r; /* glibc's name for the kernel's user_pt_regs */
    long nr;           /* NT_ARM_SYSTEM_CALL */
    int nr_changed;
};
#else
#error "hpcbox-ptrace supports x86_64 and aarch64"
#endif

/* The audit architecture the seccomp filter accepts (AUDIT_ARCH_*). */
uint32_t arch_audit(void);

int regs_get(pid_t tid, struct regs *regs);
int regs_set(pid_t tid, struct regs *regs);

long regs_nr(const struct regs *regs);
void regs_set_nr(struct regs *regs, long nr);
uint64_t regs_arg(const struct regs *regs, int i);
void regs_set_arg(struct regs *regs, int i, uint64_t value);
long regs_ret(const struct regs *regs);
void regs_set_ret(struct regs *regs, long value);
uint64_t regs_sp(const struct regs *regs);
/* At a syscall-exit stop: make the tracee execute the syscall instruction again, as syscall nr
 * with the arguments in regs (the registers saved at its entry). */
void regs_restart(struct regs *regs, long nr);

#endif

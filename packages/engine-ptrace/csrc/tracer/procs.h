/* procs: what the tracer remembers about each traced thread (keyed by tid). */
#ifndef HPCBOX_TRACER_PROCS_H
#define HPCBOX_TRACER_PROCS_H

#include "arch.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Emulated credentials (root emulation): per thread, as the kernel keeps them (struct creds,
 * shared with the preload engine: csrc/guestpath/creds.h). */
#include "creds.h"

enum exit_action {
    EXIT_NONE,
    EXIT_REVERSE_LINK,  /* readlink under a binding: map the host link text back to the guest */
    EXIT_SET_RET,       /* a skipped syscall without seccomp: (re)write its return value */
    EXIT_RESTART,       /* an injected syscall (prctl, brk) ran: restart the syscall it replaced */
    EXIT_MKNOD,         /* a device node made a regular file: record the device (exit_path) */
};

/* What the tracer wrote for a path argument, to write again when the kernel restarts the syscall
 * after a signal handler (SA_RESTART): the handler's frame may have overwritten it. */
struct restart {
    long nr;
    uint64_t addr;
    void *data;
    size_t len;
};

struct chroot_root;

struct proc {
    pid_t tid;
    struct proc *next;        /* hash chain */
    struct creds creds;
    struct chroot_root *root;  /* set by chroot(2) inside (chroot.c); NULL: the container's */
    char *exe;                /* the guest program /proc/<tid>/exe stands for (NULL: the kernel's) */
    char *pending_exe;        /* from an execve stop; becomes exe at the exec event */
    bool in_syscall;          /* without seccomp: between the entry and the exit stop */
    bool held;                /* a new tracee stopped before its parent's fork event: not resumed */
    bool inherited;           /* creds and exe were copied from the parent */
    bool owners_filter;       /* has the filter that stops stat by descriptor (filter.c), or had it injected */
    bool owners_injected;     /* that filter's seccomp() was injected: check its answer at the exit */
    bool owners_wait;         /* interrupted to get that filter: stop at its next syscall entry */
    char comm[16];            /* the name the kernel would have given at exec (set at the next stop) */
    char pending_comm[16];
    unsigned char pending_argfix; /* enum argfix: how the loader was started (exec.c) */
    unsigned char argfix;         /* the same, from the exec event until the argv area is fixed */
    bool brk_asked;               /* a brk(0) was injected: brk holds its answer once it ran */
    uint64_t arg_start;           /* the program's argv in the tracee, for PR_SET_MM_MAP (0: none) */
    uint64_t brk;
    struct regs saved;        /* the registers of the syscall an injected one replaced */
    struct restart restart[4]; /* the latest ones (a signal handler may translate paths too) */
    unsigned next_restart;
    enum exit_action exit_action;
    uint64_t exit_addr;
    uint64_t exit_size;
    long exit_ret;
    char *exit_path;          /* EXIT_MKNOD: the host path (malloc'ed) */
    unsigned char reloc_step; /* relocate.c: where a descriptor's move into the reserved range is */
    int reloc_fd;             /* the descriptor the open returned */
    int reloc_new;            /* its copy in the reserved range */
    uint64_t reloc_signals;   /* signals that arrived during the move (bit sig - 1) */
};

#define PROCS_BUCKETS 1024

struct proc_table {
    struct proc *buckets[PROCS_BUCKETS];
    unsigned long count;
};

void procs_init(struct proc_table *t);
struct proc *procs_find(const struct proc_table *t, pid_t tid);
/* Find or create (zeroed, creds from *initial). NULL: out of memory. */
struct proc *procs_add(struct proc_table *t, pid_t tid, const struct creds *initial);
void procs_remove(struct proc_table *t, pid_t tid);
/* Copy creds, root and exe of parent into child (fork, clone, vfork). -ENOMEM. */
int procs_inherit(struct proc *child, const struct proc *parent);
/* Call fn for every entry (fn must not add or remove entries). */
void procs_each(const struct proc_table *t, void (*fn)(struct proc *p, void *arg), void *arg);
void procs_destroy(struct proc_table *t);

#endif

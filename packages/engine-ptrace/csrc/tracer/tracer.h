/* The tracer's shared state and the per-stop context every handler works on. */
#ifndef HPCBOX_TRACER_H
#define HPCBOX_TRACER_H

#include "arch.h"
#include "guestpath.h"
#include "landlock.h"
#include "procmagic.h"
#include "owners.h"
#include "memory.h"
#include "procs.h"
#include "syscalls.h"

#include <stdbool.h>
#include <sys/types.h>

struct tracer_config {
    bool seccomp;        /* a seccomp filter stops only the syscalls of the table (else every one) */
    bool trace_dirfd;    /* also stop *at() calls relative to a real directory fd */
    bool exact_owners;   /* root emulation: the owners filter from the start, record or not */
    bool emulate_ids;    /* the configured uid/gid differ from the caller's: emulate them */
    bool readonly_root;  /* writes into the rootfs fail with EROFS */
    bool stats;          /* count stops per syscall, print them on stderr at the end */
    bool landlock;       /* restrict the tracees' writes with Landlock where the kernel has it */
    uid_t uid;
    gid_t gid;
    const char *hostname; /* uname's nodename, NULL: the host's */
    const char *owners;  /* the container's ownership record (csrc/guestpath/owners.h), or NULL */
    int reserved_fd;     /* dirfds from here up always stop (relocate.c); 0: none reserved */
};

struct tracer_mount {
    char *host;          /* canonical host path of a binding (or of the root) */
    size_t len;
    bool readonly;
};

#define INTERP_CACHE 8

struct interp_info {
    dev_t dev;
    ino_t ino;
    bool valid;
    bool argv0;          /* the loader understands --argv0 (glibc >= 2.33, musl) */
};

/* A root set by chroot(2) in the container (chroot.c): a path core context of its own. */
struct chroot_root {
    char *guest;                 /* the new root as a canonical guest path of the container */
    struct gp_context gp;        /* root: its host directory; the container's bindings below it */
    struct chroot_root *next;
};

struct tracer {
    struct tracer_config cfg;
    struct gp_context gp;
    struct tracer_mount *mounts; /* [0] is the root, then the bindings */
    size_t n_mounts;
    struct proc_table procs;
    short by_nr[SC_MAX_NR];
    int nr_execve;
    struct creds initial;
    struct owners owners;        /* fd -1 without a record */
    struct owners_view view;
    struct interp_info interps[INTERP_CACHE];
    struct hb_landlock landlock; /* the tracees' ruleset until the child enforces it (fd -1: none) */
    unsigned next_interp;
    pid_t first;
    int first_status;    /* exit status for the caller: code, or 128 + signal */
    bool first_done;
    bool told_ptrace;    /* the line about a debugger inside was printed */
    bool told_owners;    /* the line about an owners filter that could not be added was printed */
    bool owners_at_start; /* the record held something at the start: the first process gets the owners filter */
    bool owners_seen;    /* the record holds something: every process gets the owners filter */
    struct chroot_root *roots;   /* every root a chroot(2) inside set (chroot.c) */
    unsigned long stops_total;
    unsigned long stops_by_sc[SC_MAX_NR];
    unsigned long stops_other;
};

/* One syscall stop being handled. */
struct stop {
    pid_t tid;
    struct proc *proc;
    const struct sc_desc *sc;
    struct regs regs;
    struct scratch scratch;
    bool dirty;          /* regs changed: write them back */
    bool skip;           /* do not run the syscall; it returns ret */
    long ret;
    bool want_exit;      /* stop again at the syscall's exit (proc->exit_action says why) */
    bool have_host;      /* host: the first path argument translated (in the rootfs or a volume) */
    char host[PATH_MAX];
};

/* tracer.c */
int tracer_init(struct tracer *t, const struct tracer_config *cfg, const char *rootfs);
int tracer_add_binding(struct tracer *t, const char *guest, const char *host, bool readonly);
void tracer_destroy(struct tracer *t);
/* Fork, exec argv[0] (a guest path or a name looked up in PATH) under tracing, and trace until
 * every tracee is gone. Returns the first process's status (code, 128+signal) or 125/126/127. */
int tracer_run(struct tracer *t, const char *host_cwd, char *const argv[]);
/* Whether ptrace with a seccomp filter works here: 0, or a negative errno with *step naming what failed. */
int tracer_probe(const char **step, bool *seccomp);

/* backstop.c */
/* Build t->landlock for the child (nothing with --no-landlock or without Landlock). 0 or -errno. */
int backstop_prepare(struct tracer *t);

/* paths.c */
/* Guest -> host as thread tid sees it (its cwd, its /proc/self). 1: left alone (relative to a cwd
 * outside the guest), 0: host filled, <0: errno. canon (optional) receives the guest path. */
int paths_translate(struct tracer *t, pid_t tid, const char *guest, int flags, char *canon, char *host);
/* The same relative to tid's directory fd dirfd (AT_FDCWD: its cwd); 1 also when dirfd is no
 * directory inside the guest. Paths through /proc/PID/{root,cwd,fd/N} stay in the guest. */
int paths_translate_at(struct tracer *t, pid_t tid, int dirfd, const char *guest, int flags, char *canon,
                       char *host);
/* The guest path of tid's cwd: 0, 1 (outside the guest: out holds the host path), or -errno. */
int paths_guest_cwd(struct tracer *t, pid_t tid, char *out, size_t size);
/* The mount (root or binding) a canonical host path lies in, or NULL. */
const struct tracer_mount *paths_mount_of(const struct tracer *t, const char *host);
/* Translate the path arguments of s->sc in place. 0 or -errno to fail the syscall with. */
int paths_handle(struct tracer *t, struct stop *s);
int paths_getcwd(struct tracer *t, struct stop *s);
int paths_sockaddr(struct tracer *t, struct stop *s);
int paths_readlink_exit(struct tracer *t, pid_t tid, struct proc *p, struct regs *regs);

/* exec.c */
/* How a program was started through its loader, so that /proc/PID/cmdline can show its argv. */
enum argfix {
    ARGFIX_NONE,
    ARGFIX_PLAIN,  /* LOADER PROGRAM ARGS...: the program's argv starts at argv[1] */
    ARGFIX_ARGV0,  /* LOADER --argv0 ARGV0 PROGRAM ARGS...: swap ARGV0 and PROGRAM in memory */
};
/* At the exec event: arrange the argv strings so that the program's argv is one contiguous tail
 * of the area the kernel reports, and remember where it starts (p->arg_start). */
void exec_fix_args(struct tracer *t, struct proc *p);
/* The prctl_mm_map for PR_SET_MM_MAP from /proc/TID/stat, with the program's argv area and brk. */
struct prctl_mm_map;
int exec_mm_map(pid_t tid, uint64_t arg_start, uint64_t brk, struct prctl_mm_map *map);
int exec_handle(struct tracer *t, struct stop *s);
/* #! line parsing (kernel rules): 0 and interp/arg filled (arg may be ""), or -ENOEXEC. */
int exec_parse_shebang(const char *buf, size_t len, char *interp, size_t isize, char *arg, size_t asize);
/* PT_INTERP of an ELF file open at fd: 1 (interp filled), 0 (static), -ENOEXEC (not ELF64). */
int exec_elf_interp(int fd, const unsigned char *head, size_t head_len, char *interp, size_t size);

/* rootemu.c */
int rootemu_ids(struct tracer *t, struct stop *s);
int rootemu_chown(struct tracer *t, struct stop *s);
int rootemu_mknod(struct tracer *t, struct stop *s);
int rootemu_uname(struct tracer *t, struct stop *s);
int rootemu_stat(struct tracer *t, struct stop *s);
/* At the exit of a mknod that rootemu_mknod turned into a regular file: record the device. */
void rootemu_mknod_exit(struct tracer *t, struct proc *p, long ret);

/* chroot.c */
/* The path core context thread tid resolves in: its chroot's, else the container's. */
struct gp_context *chroot_gp(struct tracer *t, pid_t tid);
/* chroot(2): emulated (the syscall is skipped, s->ret says how it went). */
int chroot_handle(struct tracer *t, struct stop *s);
void chroot_destroy(struct tracer *t);

/* relocate.c */
/* The first descriptor of the reserved range for this process's RLIMIT_NOFILE (0: none). */
int relocate_floor(void);
/* At an open's entry (paths handled): whether its descriptor must move into the reserved range at
 * the exit (a guest directory above a binding); if so the exit is arranged (s->want_exit). */
void relocate_arrange(struct tracer *t, struct stop *s);
/* A syscall stop of p while p->reloc_step is set: the next step of the move. Whether p must stop
 * at its next syscall entry or exit (PTRACE_SYSCALL). */
bool relocate_stop(struct tracer *t, struct proc *p);
/* At a seccomp stop: dup or fcntl(F_DUPFD*) of a descriptor in the range is made to copy it into the
 * range (r changed: true). */
bool relocate_dup(const struct tracer *t, struct regs *r);
/* A signal for p in the middle of a move: kept (true) and sent again once the move is done. */
bool relocate_defer_signal(struct proc *p, int sig);

/* filter.c */
bool filter_traces(const struct tracer_config *cfg, const struct sc_desc *d);
bool filter_fast_dirfd(const struct tracer_config *cfg, const struct sc_desc *d);
/* Whether d stops only through the owners filter (stat by descriptor: fstat). */
bool filter_owners_only(const struct sc_desc *d);
/* Build the BPF program into prog (cap entries): its length, or -ENOSPC. */
struct sock_filter;
int filter_build(const struct tracer_config *cfg, struct sock_filter *prog, size_t cap);
/* The owners filter (root emulation once the ownership record holds something): every fstat,
 * newfstatat and statx stops. Its length, or -ENOSPC. */
int filter_build_owners(struct sock_filter *prog, size_t cap);
/* In the child, before exec: no_new_privs and the filter (and the owners filter). 0 or -errno. */
int filter_install(const struct tracer_config *cfg, bool owners);
/* Whether seccomp filters that return SECCOMP_RET_TRACE can be installed here. */
bool filter_available(void);

#endif

/* tracer: starting the first process, the wait loop, and the bookkeeping of fork/clone/exec,
 * group stops, signals and exits.
 * Over 500 lines: the wait loop and the start of the first process share the tracer's static
 * state (the process table, the forwarding target, the owners filter schedule). */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_ENGINE 125
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define OPTIONS (PTRACE_O_TRACESECCOMP | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | \
                 PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)

/* The one piece of global state: where the signal handler forwards SIGTERM & co. */
static volatile pid_t forward_to;

static int add_mount(struct tracer *t, const char *host, bool readonly)
{
    char real[PATH_MAX];
    struct tracer_mount *m;

    if (!realpath(host, real))
        return -errno;
    m = realloc(t->mounts, (t->n_mounts + 1) * sizeof(*m));
    if (!m)
        return -ENOMEM;
    t->mounts = m;
    m = &t->mounts[t->n_mounts];
    if (!(m->host = strdup(real)))
        return -ENOMEM;
    m->len = strlen(real);
    m->readonly = readonly;
    t->n_mounts++;
    return 0;
}

int tracer_init(struct tracer *t, const struct tracer_config *cfg, const char *rootfs)
{
    int rc;

    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    t->cfg.reserved_fd = relocate_floor();
    procs_init(&t->procs);
    sc_index(t->by_nr);
    t->nr_execve = sc_native_nr(sc_by_name("execve"));
    creds_init(&t->initial, cfg->uid, cfg->gid);
    t->owners.fd = -1;
    t->view = (struct owners_view){(uint32_t)getuid(), (uint32_t)getgid(), cfg->uid, cfg->gid};
    if (cfg->emulate_ids && cfg->owners) {
        rc = owners_open(&t->owners, cfg->owners, true);
        if (rc < 0)
            fprintf(stderr, "hpcbox-ptrace: the ownership record %s: %s; chown is not recorded\n", cfg->owners,
                    strerror(-rc));
    }
    rc = gp_context_init(&t->gp, rootfs);
    if (rc < 0)
        return rc;
    return add_mount(t, t->gp.root, cfg->readonly_root);
}

int tracer_add_binding(struct tracer *t, const char *guest, const char *host, bool readonly)
{
    int rc = gp_add_binding(&t->gp, guest, host);

    return rc < 0 ? rc : add_mount(t, host, readonly);
}

void tracer_destroy(struct tracer *t)
{
    for (size_t i = 0; i < t->n_mounts; i++)
        free(t->mounts[i].host);
    free(t->mounts);
    t->mounts = NULL;
    t->n_mounts = 0;
    procs_destroy(&t->procs);
    chroot_destroy(t);
    gp_context_destroy(&t->gp);
    owners_close(&t->owners);
}

/* A failed request about a tracee: ESRCH only means it died meanwhile (SIGKILL, exit of its group);
 * anything else is worth a line on stderr. */
static void check(int rc, const char *what, pid_t tid)
{
    if (rc < 0 && rc != -ESRCH)
        fprintf(stderr, "hpcbox-ptrace: %s of %d: %s\n", what, (int)tid, strerror(-rc));
}

static int req(long rc)
{
    return rc < 0 ? -errno : 0;
}

/* ---- syscall stops ---- */

/* ptrace by a program inside: every process of the container is traced by this tracer already,
 * and a process has one tracer, so the kernel refuses PTRACE_TRACEME/ATTACH/SEIZE with EPERM.
 * Emulating a second tracer (gdb, strace) on top would mean answering all of ptrace, waitpid's
 * ptrace stops and the event options for the guest; not done: say so once, then EPERM. */
static int guest_ptrace(struct tracer *t, struct stop *s)
{
    long request = (long)regs_arg(&s->regs, 0);

    if (request != PTRACE_TRACEME && request != PTRACE_ATTACH && request != PTRACE_SEIZE)
        return 0; /* on no tracee of its own: the kernel's ESRCH */
    if (!t->told_ptrace) {
        t->told_ptrace = true;
        fprintf(stderr, "hpcbox: a debugger cannot trace under the ptrace engine (hpcbox traces the "
                        "container's processes itself); use --engine runc\n");
    }
    return -EPERM;
}

static int dispatch(struct tracer *t, struct stop *s)
{
    int rc;

    if (!filter_traces(&t->cfg, s->sc))
        return 0;
    switch (s->sc->kind) {
    case SK_PATH:
    case SK_READLINK:
        return paths_handle(t, s);
    case SK_GETCWD:
        return paths_getcwd(t, s);
    case SK_EXEC:
    case SK_EXECAT:
        return exec_handle(t, s);
    case SK_SOCKADDR:
        return paths_sockaddr(t, s);
    case SK_UNAME:
        return rootemu_uname(t, s);
    case SK_IDS:
        return t->cfg.emulate_ids ? rootemu_ids(t, s) : 0;
    case SK_CHOWN:
        rc = paths_handle(t, s);
        return rc < 0 ? rc : rootemu_chown(t, s);
    case SK_MKNOD:
        rc = paths_handle(t, s);
        return rc < 0 ? rc : rootemu_mknod(t, s);
    case SK_STAT:
        rc = paths_handle(t, s);
        return rc < 0 ? rc : rootemu_stat(t, s);
    case SK_PTRACE:
        return guest_ptrace(t, s);
    case SK_CHROOT:
        return chroot_handle(t, s);
    }
    return 0;
}

/* The first traced syscalls after an exec through a loader: each runs another syscall in its
 * place, then (at that one's exit) is restarted: prctl(PR_SET_NAME) so that ps and /proc/PID/comm
 * show the program, then brk(0) and prctl(PR_SET_MM, PR_SET_MM_MAP) so that /proc/PID/cmdline
 * shows its argv (exec_fix_args). One at a time from a syscall-entry stop, so that a signal
 * arriving meanwhile finds the program at its own syscall, never in the middle of a chain. */
static bool inject_next(struct proc *p, const struct regs *at, enum __ptrace_request *resume)
{
    struct scratch scratch;
    struct regs r = *at;
    struct prctl_mm_map map;
    uint64_t addr;
    long nr;

    scratch_init(&scratch, p->tid, regs_sp(&r));
    if (p->comm[0]) {
        if (scratch_put(&scratch, p->comm, sizeof(p->comm), &addr) < 0)
            return false;
        p->comm[0] = '\0';
        nr = TRACER_NR_PRCTL;
        regs_set_arg(&r, 0, PR_SET_NAME);
        regs_set_arg(&r, 1, addr);
    } else if (!p->brk_asked) {
        p->brk_asked = true;
        nr = TRACER_NR_BRK;
        regs_set_arg(&r, 0, 0);
    } else {
        int rc = exec_mm_map(p->tid, p->arg_start, p->brk, &map);

        p->arg_start = 0;
        if (rc < 0 || scratch_put(&scratch, &map, sizeof(map), &addr) < 0)
            return false;
        nr = TRACER_NR_PRCTL;
        regs_set_arg(&r, 0, PR_SET_MM);
        regs_set_arg(&r, 1, PR_SET_MM_MAP);
        regs_set_arg(&r, 2, addr);
        regs_set_arg(&r, 3, sizeof(map));
        regs_set_arg(&r, 4, 0);
    }
    regs_set_nr(&r, nr);
    if (regs_set(p->tid, &r) < 0)
        return false;
    p->saved = *at;
    p->exit_action = EXIT_RESTART;
    *resume = PTRACE_SYSCALL;
    return true;
}

static bool inject_pending(const struct proc *p)
{
    return p->comm[0] || p->arg_start;
}

/* Whether p must get the owners filter (filter.c) before the syscall sc runs: root emulation with
 * a record file, p lacks the filter, and the record holds something or sc may add to it. */
static bool owners_filter_due(struct tracer *t, const struct proc *p, const struct sc_desc *sc)
{
    if (!t->cfg.seccomp || !t->cfg.emulate_ids || t->owners.fd < 0 || p->owners_filter)
        return false;
    return sc->kind == SK_CHOWN || sc->kind == SK_MKNOD || owners_any(&t->owners);
}

/* Run seccomp(SECCOMP_SET_MODE_FILTER, 0, owners filter) in place of the syscall at hand, which is
 * restarted after it (as for inject_next). Once per process: a failure is said at the exit. */
static bool inject_owners_filter(struct proc *p, const struct regs *at, enum __ptrace_request *resume)
{
    struct sock_filter prog[16];
    struct sock_fprog fprog;
    struct scratch scratch;
    struct regs r = *at;
    uint64_t prog_addr, fprog_addr;
    int n = filter_build_owners(prog, sizeof(prog) / sizeof(prog[0]));

    p->owners_filter = true;
    p->owners_wait = false;
    scratch_init(&scratch, p->tid, regs_sp(&r));
    if (n < 0 || scratch_put(&scratch, prog, (size_t)n * sizeof(prog[0]), &prog_addr) < 0)
        return false;
    memset(&fprog, 0, sizeof(fprog));
    fprog.len = (unsigned short)n;
    fprog.filter = (struct sock_filter *)(uintptr_t)prog_addr;
    if (scratch_put(&scratch, &fprog, sizeof(fprog), &fprog_addr) < 0)
        return false;
    regs_set_nr(&r, TRACER_NR_SECCOMP);
    regs_set_arg(&r, 0, SECCOMP_SET_MODE_FILTER);
    regs_set_arg(&r, 1, 0);
    regs_set_arg(&r, 2, fprog_addr);
    if (regs_set(p->tid, &r) < 0)
        return false;
    p->saved = *at;
    p->exit_action = EXIT_RESTART;
    p->owners_injected = true;
    *resume = PTRACE_SYSCALL;
    return true;
}

/* A syscall-entry stop of a process interrupted for the owners filter: any syscall, traced by
 * the filter or not, is replaced by the filter's seccomp() and then restarted. */
static void on_owners_entry(struct proc *p, enum __ptrace_request *resume)
{
    struct regs r;

    p->owners_wait = false;
    if (p->owners_filter || regs_get(p->tid, &r) < 0)
        return;
    p->exit_action = EXIT_NONE;
    inject_owners_filter(p, &r, resume);
}

static void interrupt_for_owners(struct proc *p, void *arg)
{
    (void)arg;
    if (p->owners_filter || p->held)
        return;
    /* it stops (PTRACE_EVENT_STOP) wherever it is, even in a syscall that never stops (read,
     * fstat, a blocking wait), and is then resumed to its next syscall entry */
    p->owners_wait = true;
    check(req(ptrace(PTRACE_INTERRUPT, p->tid, 0, 0)), "interrupting for the owners filter", p->tid);
}

/* Once the ownership record holds something (a chown here, or another run of the container):
 * every process without the owners filter gets it at its next syscall, so that fstat of a
 * descriptor opened before, by a process that makes no other traced syscall, shows the record. */
static void owners_check(struct tracer *t)
{
    if (t->owners_seen || !t->cfg.seccomp || !t->cfg.emulate_ids || t->owners.fd < 0 || !owners_any(&t->owners))
        return;
    t->owners_seen = true;
    procs_each(&t->procs, interrupt_for_owners, NULL);
}

/* A syscall entry (seccomp stop, or syscall-entry stop without seccomp). */
static void on_entry(struct tracer *t, struct proc *p, enum __ptrace_request *resume)
{
    struct stop s = {.tid = p->tid, .proc = p};
    long nr;
    int rc;

    p->exit_action = EXIT_NONE;
    p->reloc_step = 0;
    if (regs_get(p->tid, &s.regs) < 0)
        return;
    if (inject_pending(p)) {
        if (inject_next(p, &s.regs, resume))
            return;
        p->comm[0] = '\0';
        p->arg_start = 0;
    }
    nr = regs_nr(&s.regs);
    if (relocate_dup(t, &s.regs)) {
        check(regs_set(p->tid, &s.regs), "copying a descriptor into the reserved range", p->tid);
        return;
    }
    if (nr < 0 || nr >= SC_MAX_NR || t->by_nr[nr] < 0)
        return;
    s.sc = &SYSCALLS[t->by_nr[nr]];
    if (owners_filter_due(t, p, s.sc) && inject_owners_filter(p, &s.regs, resume))
        return;
    if (t->cfg.stats)
        t->stops_by_sc[nr]++;
    scratch_init(&s.scratch, p->tid, regs_sp(&s.regs));
    rc = dispatch(t, &s);
    if (rc < 0) {
        s.skip = true;
        s.ret = rc;
    }
    relocate_arrange(t, &s);
    if (s.skip) {
        regs_set_nr(&s.regs, -1);
        regs_set_ret(&s.regs, s.ret);
        s.dirty = true;
        if (!t->cfg.seccomp) {
            p->exit_action = EXIT_SET_RET;
            p->exit_ret = s.ret;
        }
    }
    if (s.dirty) {
        rc = regs_set(p->tid, &s.regs);
        check(rc, "rewriting a syscall", p->tid);
        if (rc < 0)
            return;
    }
    if (s.want_exit && !s.skip && t->cfg.seccomp)
        *resume = PTRACE_SYSCALL;
}

static void on_exit_stop(struct tracer *t, struct proc *p)
{
    struct regs regs;
    enum exit_action action = p->exit_action;

    p->exit_action = EXIT_NONE;
    if (action == EXIT_RESTART) {
        if (p->owners_injected) {
            p->owners_injected = false;
            if (regs_get(p->tid, &regs) == 0 && regs_ret(&regs) < 0 && !t->told_owners) {
                t->told_owners = true;
                fprintf(stderr, "hpcbox-ptrace: cannot add the owners filter to process %d (%s): its fstat "
                                "shows the file's real owners\n", (int)p->tid, strerror((int)-regs_ret(&regs)));
            }
        }
        if (p->brk_asked && p->arg_start && !p->brk && regs_get(p->tid, &regs) == 0)
            p->brk = (uint64_t)regs_ret(&regs); /* the answer of an injected brk(0) */
        regs = p->saved;
        regs_restart(&regs, regs_nr(&p->saved));
        check(regs_set(p->tid, &regs), "restarting a syscall", p->tid);
        return;
    }
    if (action == EXIT_NONE || regs_get(p->tid, &regs) < 0)
        return;
    if (action == EXIT_SET_RET) {
        regs_set_ret(&regs, p->exit_ret);
        check(regs_set(p->tid, &regs), "setting a return value", p->tid);
    } else if (action == EXIT_MKNOD) {
        rootemu_mknod_exit(t, p, regs_ret(&regs));
    } else if (action == EXIT_REVERSE_LINK && paths_readlink_exit(t, p->tid, p, &regs) == 1) {
        check(regs_set(p->tid, &regs), "mapping a link back", p->tid);
    }
}

static bool is_syscall_exit(pid_t tid)
{
    struct __ptrace_syscall_info info;

    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof(info), &info) < 0)
        return false;
    return info.op == PTRACE_SYSCALL_INFO_EXIT;
}

/* ---- process events ---- */

static void on_new_child(struct tracer *t, struct proc *parent, enum __ptrace_request resume)
{
    unsigned long msg;
    struct proc *child;

    if (ptrace(PTRACE_GETEVENTMSG, parent->tid, 0, &msg) < 0)
        return;
    child = procs_add(&t->procs, (pid_t)msg, &t->initial);
    if (!child) {
        check(req(kill((pid_t)msg, SIGKILL)), "killing an untracked child", (pid_t)msg); /* never untranslated */
        return;
    }
    if (procs_inherit(child, parent) < 0)
        child->inherited = true; /* without the exe name, but with the creds */
    if (t->owners_seen && !child->owners_filter) {
        child->owners_wait = true; /* forked before its parent got the owners filter */
        resume = PTRACE_SYSCALL;
    }
    if (child->held) {
        child->held = false;
        check(req(ptrace(resume, child->tid, 0, 0)), "starting a child", child->tid);
    }
}

static void on_exec(struct tracer *t, struct proc *p)
{
    unsigned long former;

    if (ptrace(PTRACE_GETEVENTMSG, p->tid, 0, &former) == 0 && (pid_t)former != p->tid) {
        /* a thread other than the leader exec'd: it now has the leader's tid */
        struct proc *old = procs_find(&t->procs, (pid_t)former);

        if (old) {
            free(p->pending_exe);
            p->pending_exe = old->pending_exe;
            old->pending_exe = NULL;
            memcpy(p->pending_comm, old->pending_comm, sizeof(p->pending_comm));
            p->pending_argfix = old->pending_argfix;
            p->creds = old->creds;
            p->owners_filter = old->owners_filter; /* the filters of the thread that exec'd */
            procs_remove(&t->procs, (pid_t)former);
        }
    }
    free(p->exe);
    p->exe = p->pending_exe;
    p->pending_exe = NULL;
    p->exit_action = EXIT_NONE;
    memcpy(p->comm, p->pending_comm, sizeof(p->comm));
    p->pending_comm[0] = '\0';
    p->argfix = p->pending_argfix;
    p->pending_argfix = ARGFIX_NONE;
    p->brk_asked = false;
    p->brk = 0;
    exec_fix_args(t, p);
}

static void kill_one(struct proc *p, void *arg)
{
    (void)arg;
    check(req(kill(p->tid, SIGKILL)), "killing a leftover", p->tid);
}

static void on_death(struct tracer *t, pid_t pid, int status)
{
    procs_remove(&t->procs, pid);
    if (pid != t->first)
        return;
    t->first_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    t->first_done = true;
    forward_to = 0;
    /* like the end of a pid namespace: what the program left running goes with it */
    procs_each(&t->procs, kill_one, NULL);
}

static bool group_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static int trace_loop(struct tracer *t)
{
    enum __ptrace_request plain = t->cfg.seccomp ? PTRACE_CONT : PTRACE_SYSCALL;

    for (;;) {
        enum __ptrace_request resume = plain;
        int status, event, sig, inject = 0;
        struct proc *p;
        pid_t pid = waitpid(-1, &status, __WALL);

        if (pid < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                return t->first_done ? t->first_status : EXIT_ENGINE;
            fprintf(stderr, "hpcbox-ptrace: waitpid: %s\n", strerror(errno));
            return EXIT_ENGINE;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            on_death(t, pid, status);
            continue;
        }
        if (!WIFSTOPPED(status))
            continue;
        t->stops_total++;
        event = status >> 16;
        sig = WSTOPSIG(status);
        p = procs_find(&t->procs, pid);
        if (!p) { /* a new tracee, seen before its parent's fork event: wait for that */
            p = procs_add(&t->procs, pid, &t->initial);
            if (!p) {
                check(req(kill(pid, SIGKILL)), "killing an untracked tracee", pid);
                continue;
            }
            p->held = true;
            continue;
        }
        if (t->first_done) { /* everything is being killed */
            check(req(ptrace(PTRACE_CONT, pid, 0, 0)), "resuming", pid);
            continue;
        }
        switch (event) {
        case PTRACE_EVENT_SECCOMP:
            on_entry(t, p, &resume);
            break;
        case PTRACE_EVENT_FORK:
        case PTRACE_EVENT_VFORK:
        case PTRACE_EVENT_CLONE:
            on_new_child(t, p, plain);
            break;
        case PTRACE_EVENT_EXEC:
            on_exec(t, p);
            break;
        case PTRACE_EVENT_STOP:
            if (group_stop_signal(sig)) { /* stay stopped until SIGCONT, as natively */
                check(req(ptrace(PTRACE_LISTEN, pid, 0, 0)), "keeping a group stop", pid);
                continue;
            }
            break;
        case 0:
            if (sig == (SIGTRAP | 0x80)) {
                if (p->reloc_step)
                    resume = relocate_stop(t, p) ? PTRACE_SYSCALL : plain;
                else if (!t->cfg.seccomp && !is_syscall_exit(pid))
                    on_entry(t, p, &resume);
                else if (p->owners_wait && !is_syscall_exit(pid))
                    on_owners_entry(p, &resume);
                else
                    on_exit_stop(t, p);
            } else if (!relocate_defer_signal(p, sig)) {
                inject = sig; /* a signal for the program: deliver it */
            }
            break;
        default:
            t->stops_other++;
            break;
        }
        owners_check(t);
        if (p->owners_wait && resume == PTRACE_CONT)
            resume = PTRACE_SYSCALL; /* on to its next syscall entry (on_owners_entry) */
        if (p->reloc_step && resume == PTRACE_CONT)
            resume = PTRACE_SYSCALL; /* a descriptor is being moved (relocate.c) */
        check(req(ptrace(resume, pid, 0, (void *)(long)inject)), "resuming", pid);
    }
}

/* ---- start ---- */

static void forward(int sig)
{
    pid_t to = forward_to;

    if (to > 0)
        kill(to, sig);
}

static void ignore(int sig)
{
    (void)sig; /* terminal signals reach the program from the terminal itself */
}

/* Give `sig` the handler `fn`, unless it was ignored when the tracer started (SIGHUP under nohup,
 * SIGINT in a background job): exec(2) keeps SIG_IGN, so the program inherits it as it would
 * natively, where a handler would be reset to the default action for it. */
static int set_handler_unless_ignored(int sig, void (*fn)(int))
{
    struct sigaction sa, was;

    if (sigaction(sig, NULL, &was) < 0)
        return -errno;
    if (was.sa_handler == SIG_IGN)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = fn;
    return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}

static int set_handlers(void)
{
    static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
    static const int ignored[] = {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH};
    int rc;

    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if ((rc = set_handler_unless_ignored(forwarded[i], forward)) < 0)
            return rc;
    /* a handler, not SIG_IGN: exec resets it for the program */
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        if ((rc = set_handler_unless_ignored(ignored[i], ignore)) < 0)
            return rc;
    return 0;
}

/* argv[0] as a guest path: itself when it holds a "/", else the first executable in $PATH. */
static int find_program(struct tracer *t, const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    char host[PATH_MAX];

    if (strchr(name, '/')) {
        if (strlen(name) >= size)
            return -ENAMETOOLONG;
        memcpy(out, name, strlen(name) + 1);
        return 0;
    }
    if (!path || !*path)
        path = DEFAULT_PATH;
    while (*path) {
        const char *end = strchrnul(path, ':');
        int n = snprintf(out, size, "%.*s/%s", (int)(end - path), path, name);
        struct stat st;

        path = *end ? end + 1 : end;
        if (n <= 0 || (size_t)n >= size || out[0] != '/')
            continue;
        if (gp_to_host(&t->gp, out, GP_FOLLOW_LAST, host, sizeof(host)) == 0 &&
            stat(host, &st) == 0 && S_ISREG(st.st_mode) && access(host, X_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

static void child_main(const struct tracer *t, int go, const char *program, char *const argv[])
{
    struct hb_landlock ll = t->landlock;
    char c;
    int rc;

    if (read(go, &c, 1) != 1)
        _exit(EXIT_ENGINE); /* the tracer could not attach and said so */
    close(go);
    if (ll.fd >= 0 && (rc = hb_landlock_enforce(&ll)) < 0) {
        fprintf(stderr, "hpcbox-ptrace: cannot enforce the Landlock ruleset: %s; try --no-landlock\n",
                strerror(-rc));
        _exit(EXIT_ENGINE);
    }
    if (t->cfg.seccomp && (rc = filter_install(&t->cfg, t->owners_at_start)) < 0) {
        fprintf(stderr, "hpcbox-ptrace: cannot install the seccomp filter: %s; try --no-seccomp\n",
                strerror(-rc));
        _exit(EXIT_ENGINE);
    }
    execv(program, argv); /* stopped by the tracer and translated */
    rc = errno;
    fprintf(stderr, "hpcbox-ptrace: cannot run %s: %s\n", program, strerror(rc));
    _exit(rc == ENOENT || rc == ENOTDIR || rc == ELOOP ? 127 : 126);
}

static int attach(struct tracer *t, pid_t child)
{
    int status;

    if (ptrace(PTRACE_SEIZE, child, 0, (void *)(long)OPTIONS) < 0)
        return -errno;
    if (t->cfg.seccomp)
        return 0;
    /* without a filter every syscall stops: put the child into syscall tracing right away */
    if (ptrace(PTRACE_INTERRUPT, child, 0, 0) < 0 || waitpid(child, &status, __WALL) < 0)
        return -errno;
    return ptrace(PTRACE_SYSCALL, child, 0, 0) < 0 ? -errno : 0;
}

int tracer_run(struct tracer *t, const char *host_cwd, char *const argv[])
{
    char program[PATH_MAX];
    struct proc *p;
    int fds[2], rc;
    pid_t child;

    if (t->cfg.seccomp && !filter_available()) {
        /* No fast path here: stop on every system call instead (udocker's P2), still correct. */
        t->cfg.seccomp = false;
        if (getenv("HPCBOX_DEBUG") && *getenv("HPCBOX_DEBUG") && strcmp(getenv("HPCBOX_DEBUG"), "0") != 0)
            fprintf(stderr, "hpcbox-ptrace: seccomp filters are not available here: tracing every "
                            "system call (slower)\n");
    }
    rc = find_program(t, argv[0], program, sizeof(program));
    if (rc < 0) {
        fprintf(stderr, "hpcbox-ptrace: %s: not found in the container's PATH (%s)\n", argv[0],
                getenv("PATH") ? getenv("PATH") : DEFAULT_PATH);
        return 127;
    }
    /* the tracer uses absolute paths only: its cwd is the program's, before any tracing starts */
    if (chdir(host_cwd) < 0) {
        fprintf(stderr, "hpcbox-ptrace: cannot change to the working directory: %s\n", strerror(errno));
        return EXIT_ENGINE;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 || set_handlers() < 0 || pipe2(fds, O_CLOEXEC) < 0) {
        fprintf(stderr, "hpcbox-ptrace: setting up: %s\n", strerror(errno));
        return EXIT_ENGINE;
    }
    if (backstop_prepare(t) < 0)
        return EXIT_ENGINE;
    t->owners_at_start = t->cfg.seccomp && t->cfg.emulate_ids &&
                         (t->cfg.exact_owners || (t->owners.fd >= 0 && owners_any(&t->owners)));
    child = fork();
    if (child != 0)
        hb_landlock_close(&t->landlock); /* the child has its copy */
    if (child < 0) {
        fprintf(stderr, "hpcbox-ptrace: fork: %s\n", strerror(errno));
        return EXIT_ENGINE;
    }
    if (child == 0) {
        close(fds[1]);
        child_main(t, fds[0], program, argv);
    }
    close(fds[0]);
    rc = attach(t, child);
    if (rc < 0) {
        fprintf(stderr, "hpcbox-ptrace: cannot trace the program (ptrace: %s); ptrace may be forbidden "
                "here (Yama ptrace_scope, a seccomp policy, or running under another tracer)\n", strerror(-rc));
        close(fds[1]);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return EXIT_ENGINE;
    }
    p = procs_add(&t->procs, child, &t->initial);
    if (!p) {
        kill(child, SIGKILL);
        waitpid(child, NULL, __WALL);
        return EXIT_ENGINE;
    }
    p->inherited = true;
    p->owners_filter = t->owners_at_start;
    t->owners_seen = t->owners_at_start;
    t->first = child;
    forward_to = child;
    if (write(fds[1], "g", 1) != 1) {
        kill(child, SIGKILL);
    }
    close(fds[1]);
    return trace_loop(t);
}

int tracer_probe(const char **step, bool *seccomp)
{
    struct tracer_config cfg = {.seccomp = filter_available(), .hostname = "probe"};
    int fds[2], status, rc = 0;
    pid_t child;

    *step = "pipe";
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    *step = "fork";
    child = fork();
    if (child < 0)
        return -errno;
    if (child == 0) {
        struct utsname u;
        char c;

        close(fds[1]);
        if (read(fds[0], &c, 1) != 1)
            _exit(2);
        if (cfg.seccomp && filter_install(&cfg, false) < 0)
            _exit(3);
        _exit(uname(&u) == 0 ? 0 : 4);
    }
    close(fds[0]);
    *seccomp = cfg.seccomp;
    *step = "ptrace(PTRACE_SEIZE)";
    if (ptrace(PTRACE_SEIZE, child, 0, (void *)(long)(PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL)) < 0) {
        rc = -errno;
        close(fds[1]);
        waitpid(child, NULL, 0);
        return rc;
    }
    if (write(fds[1], "g", 1) != 1)
        rc = -EPIPE;
    close(fds[1]);
    while (waitpid(child, &status, __WALL) == child) {
        if (WIFSTOPPED(status)) {
            ptrace(PTRACE_CONT, child, 0, 0);
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
            *step = "seccomp filter";
            return -EPERM;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            *step = "a traced syscall";
            return -ENOSYS;
        }
        return rc;
    }
    *step = "waitpid";
    return -errno;
}

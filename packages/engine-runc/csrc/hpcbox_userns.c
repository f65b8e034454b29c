/*
 * hpcbox-userns: run one OCI-bundle process in fresh rootless namespaces.
 *
 * The Python side (hpcbox_engine_runc) reads config.json, resolves every path on the host and
 * hands this program a flat argv spec; no JSON is parsed here.  The process tree is
 *
 *     caller ── hpcbox-userns (runner: new user/mount/uts/ipc[/net] ns, outside the pid ns)
 *                  └── init (pid 1 of the new pid ns: mounts, pivot_root, forwards signals)
 *                        └── the container process (pid 2, exec'd with the runner's environ)
 *
 * Exit status: the container's status, 128+n when it died of signal n, 125 when the runtime
 * failed (one line on stderr), 126 when the program is not executable, 127 when not found.
 *
 * This file: the processes (runner, init, the container process, signals) and main. The other
 * parts, one concern each, share hpcbox_userns.h: hpcbox_userns_spec.c (errors, the argv spec),
 * hpcbox_userns_ids.c (user namespace, id maps, chown filter), hpcbox_userns_mounts.c (the
 * container's filesystem). The build compiles every .c file of csrc into the one program.
 */
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

#include "hpcbox_version.h" /* csrc/common/: --version */

#include "hpcbox_userns.h"

/* ---- processes ----------------------------------------------------------------------------- */

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* The forwarded signals that were ignored when the runner started (SIGHUP under nohup, SIGINT in a
 * background job). exec(2) keeps SIG_IGN, so natively the program would ignore them: they are
 * neither waited for nor forwarded, and the container process keeps them ignored. Inherited by
 * init and the container process through fork. */
static sigset_t ignored_at_start;

static int record_ignored(void)
{
    sigemptyset(&ignored_at_start);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        struct sigaction now;
        if (sigaction(forwarded[i], NULL, &now) < 0)
            return usr_fail("sigaction query of signal %d", forwarded[i]);
        if (now.sa_handler == SIG_IGN)
            sigaddset(&ignored_at_start, forwarded[i]);
    }
    return 0;
}

static void forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (!sigismember(&ignored_at_start, forwarded[i]))
            sigaddset(set, forwarded[i]);
    sigaddset(set, SIGCHLD);
}

static void on_signal(int sig)
{
    (void)sig;
}

/* The container process, before it unblocks signals: the default action for the forwarded ones
 * init handles, SIG_IGN for those ignored at start. It was forked with init's (empty) handlers, and
 * a signal sent between the fork and the exec (a batch system's SIGTERM that came early, forwarded
 * by init) would otherwise run that handler and be lost; with the default it ends the process as
 * it would have ended the program. */
static int default_handlers(void)
{
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        int sig = forwarded[i];
        if (signal(sig, sigismember(&ignored_at_start, sig) ? SIG_IGN : SIG_DFL) == SIG_ERR)
            return usr_fail("signal %d to its action at start", sig);
    }
    return 0;
}

/* A pid-namespace init only receives signals it handles: give each forwarded one a handler (those
 * ignored at start stay ignored). */
static int install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (!sigismember(&ignored_at_start, forwarded[i]) && sigaction(forwarded[i], &sa, NULL) < 0)
            return usr_fail("sigaction");
    return 0;
}

static int status_to_exit(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return EXIT_RUNTIME;
}

/* Wait for `child` while forwarding signals to it; reap every other child too (pid 1 duty). */
static int supervise(pid_t child)
{
    sigset_t set;
    forwarded_set(&set);
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            usr_fail("sigwaitinfo");
            usr_report();
            return EXIT_RUNTIME;
        }
        if (sig != SIGCHLD) {
            /* A terminal signals its whole foreground process group, the container included:
             * forwarding those (si_code SI_KERNEL) would deliver them twice. */
            if (info.si_code != SI_KERNEL)
                kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t done = waitpid(-1, &status, WNOHANG);
            if (done <= 0)
                break;
            if (done == child)
                return status_to_exit(status);
        }
    }
}

static void exec_container(const struct usr_spec *spec, const sigset_t *old_mask)
{
    int code = EXIT_RUNTIME;
    if (spec->fake_chown && install_chown_filter() < 0)
        goto fail;
    /* a full map allows setgroups: drop the caller's groups (they would show as nogroup); where the
     * map fell back to a single id, setgroups is denied and there are none to drop */
    if ((spec->full_map || spec->map_argv[0][0]) && setgroups(0, NULL) < 0 && errno != EPERM) {
        usr_fail("setgroups");
        goto fail;
    }
    if (setresgid(spec->gid, spec->gid, spec->gid) < 0) {
        usr_fail("setgid %ld", spec->gid);
        goto fail;
    }
    if (setresuid(spec->uid, spec->uid, spec->uid) < 0) {
        usr_fail("setuid %ld", spec->uid);
        goto fail;
    }
    /* Without a pid namespace of its own, nothing kills the program when the init dies: ask. */
    if (spec->host_pid && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        usr_fail("prctl pdeathsig");
        goto fail;
    }
    if (spec->cwd && chdir(spec->cwd) < 0) {
        usr_fail("chdir to the working directory %s", spec->cwd);
        goto fail;
    }
    if (spec->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        usr_fail("prctl no_new_privs");
        goto fail;
    }
    if (default_handlers() < 0)
        goto fail;
    if (sigprocmask(SIG_SETMASK, old_mask, NULL) < 0) {
        usr_fail("sigprocmask");
        goto fail;
    }
    execvp(spec->argv[0], spec->argv);
    code = (errno == ENOENT || errno == ENOTDIR) ? EXIT_NOTFOUND : EXIT_NOEXEC;
    usr_fail("exec %s", spec->argv[0]);
fail:
    usr_report();
    _exit(code);
}

/* Parent pid of process `pid` from /proc/PID/stat (the field after the ')' of the name, then the state). */
static pid_t parent_of(const char *pid)
{
    char path[320], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    AUTO_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    if (got <= 0)
        return -1;
    buf[got] = '\0';
    char *end = strrchr(buf, ')');
    long ppid;
    if (!end || sscanf(end + 1, " %*c %ld", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/* SIGKILL every child of this process; return how many were found (-1 when /proc is unreadable). */
static int kill_children(void)
{
    pid_t self = getpid();
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1;
    int found = 0;
    struct dirent *entry;
    while ((entry = readdir(proc))) {
        if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
            continue;
        if (parent_of(entry->d_name) == self) {
            found++;
            kill((pid_t)atol(entry->d_name), SIGKILL);
        }
    }
    closedir(proc);
    return found;
}

/* In the caller's pid namespace no kernel teardown ends what the program left behind: the init is
 * a child subreaper (orphans come to it), and kills and reaps them until none is left. */
static void kill_leftovers(void)
{
    for (;;) {
        if (kill_children() < 0)
            return;
        if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
            return;
    }
}

/* The container's init (pid 1 of its pid namespace, or a subreaper in the caller's): build the
 * filesystem, start the process, supervise it. */
static int run_init(const struct usr_spec *spec, const sigset_t *old_mask)
{
    /* The runner lives outside this pid namespace (getppid() says 0): tie our life to it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        usr_fail("prctl pdeathsig");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (spec->host_pid && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        usr_fail("prctl child subreaper");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (install_handlers() < 0 || setup_root(spec) < 0) {
        usr_report();
        return EXIT_RUNTIME;
    }
    pid_t child = fork();
    if (child < 0) {
        usr_fail("fork the container process");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (child == 0)
        exec_container(spec, old_mask);
    int code = supervise(child);
    if (spec->host_pid)
        kill_leftovers();
    return code;
}

/* Can this user create the namespaces, mount a /proc (and an overlay, when asked) here? */
static int probe(const struct usr_spec *asked)
{
    struct usr_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.userns_fd = spec.sync_read_fd = spec.sync_write_fd = spec.map_go_fd = -1;
    if (enter_namespaces(&spec) < 0)
        return -1;
    pid_t child = fork();
    if (child < 0)
        return usr_fail("fork into the pid namespace");
    if (child == 0) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            usr_fail("make / private");
        else if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            usr_fail("mount /proc");
        else if (asked->overlay && asked->rootfs &&
                 mount("overlay", asked->rootfs, "overlay", 0, asked->overlay) < 0)
            usr_fail("mount overlay on %s", asked->rootfs);
        else
            _exit(0);
        usr_report();
        _exit(EXIT_RUNTIME);
    }
    int status;
    if (waitpid(child, &status, 0) < 0)
        return usr_fail("waitpid");
    if (status_to_exit(status) != 0) {
        errno = 0;
        return usr_fail("probe failed in the new namespaces (see the line above)");
    }
    return 0;
}

/* Die with the caller (`hpcbox run`): a SIGKILLed caller must not leave the container running.
 * Set after the namespaces exist, since changing credentials clears the death signal; the init
 * dies with us (its own death signal), and with it everything in the pid namespace. */
static int tie_to_caller(pid_t caller)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return usr_fail("prctl pdeathsig");
    if (getppid() != caller) {
        errno = 0;
        return usr_fail("the caller exited before the container started");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (hpcbox_version_asked(argc, argv))
        return hpcbox_version_print("hpcbox-userns");
    struct usr_spec *spec = calloc(1, sizeof(*spec));
    if (!spec || parse_args(argc, argv, spec) < 0) {
        if (!spec)
            usr_fail("calloc");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (spec->probe) {
        if (probe(spec) < 0) {
            usr_report();
            return EXIT_RUNTIME;
        }
        return 0;
    }
    sigset_t set, old_mask;
    if (record_ignored() < 0) {
        usr_report();
        return EXIT_RUNTIME;
    }
    forwarded_set(&set);
    if (sigprocmask(SIG_BLOCK, &set, &old_mask) < 0) {
        usr_fail("sigprocmask");
        usr_report();
        return EXIT_RUNTIME;
    }
    pid_t caller = getppid();
    if (start_mappers(spec, &old_mask) < 0 || enter_namespaces(spec) < 0 || sync_with_caller(spec) < 0 ||
        tie_to_caller(caller) < 0) {
        usr_report();
        return EXIT_RUNTIME;
    }
    pid_t init = fork();
    if (init < 0) {
        usr_fail("fork the container init");
        usr_report();
        return EXIT_RUNTIME;
    }
    if (init == 0)
        _exit(run_init(spec, &old_mask));
    return supervise(init);
}

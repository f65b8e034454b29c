/* hpcbox-preload-exec CWD PROGRAM [ARGS...]: the first process of a preload container.
 *
 * A host program, started with LD_PRELOAD=libhpcbox-preload.so and the configuration in the
 * environment: its chdir and execvp go through the library, so CWD and PROGRAM are guest paths
 * and PROGRAM is found through the container's PATH and started with the container's loader.
 *
 * It forks: the child becomes the program; this process stays as the container's supervisor, so
 * that the container behaves as under the other engines when a batch system stops it:
 * - it is a child subreaper, so everything the program starts stays below it;
 * - when the program exits, what it left running is killed (as the end of a pid namespace would);
 * - it dies with its caller (`hpcbox run`): when the caller is gone, even SIGKILLed, it kills the
 *   whole tree and exits;
 * - SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to it go to the program; the terminal's signals
 *   reach the program directly (same process group), so those from the kernel are not repeated;
 *   a signal ignored when it started (nohup) stays ignored by the program and is not passed on.
 *
 * Exit status: the program's, 128+n when it died of signal n; when nothing could be started, 127
 * not found, 126 not executable, 125 otherwise (a statically linked program: the library has
 * printed why and what to use instead). */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hpcbox_version.h" /* csrc/common/: --version */

#define EXIT_RUNTIME 125

static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
static const int from_terminal[] = {SIGINT, SIGQUIT, SIGWINCH};

/* The watched signals that were ignored when the launcher started (SIGHUP under nohup, SIGINT in a
 * background job). The program inherits SIG_IGN through fork and exec, as natively; they are still
 * watched (SIGTERM is also the caller's death signal) but never passed on. */
static sigset_t ignored_at_start;

static int record_ignored(const sigset_t *watched)
{
    sigemptyset(&ignored_at_start);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction now;
        if (sig == SIGCHLD || sigismember(watched, sig) != 1)
            continue;
        if (sigaction(sig, NULL, &now) < 0) {
            fprintf(stderr, "hpcbox: sigaction query of signal %d: %s\n", sig, strerror(errno));
            return -1;
        }
        if (now.sa_handler == SIG_IGN)
            sigaddset(&ignored_at_start, sig);
    }
    return 0;
}

static void watched_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaddset(set, forwarded[i]);
    for (size_t i = 0; i < sizeof(from_terminal) / sizeof(from_terminal[0]); i++)
        sigaddset(set, from_terminal[i]);
    sigaddset(set, SIGCHLD);
}

/* The program: chdir and exec through the library (guest paths, the container's loader). */
static int exec_program(char **argv, const sigset_t *old_mask)
{
    if (sigprocmask(SIG_SETMASK, old_mask, NULL) < 0) {
        fprintf(stderr, "hpcbox: sigprocmask: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    if (chdir(argv[1]) < 0) {
        fprintf(stderr, "hpcbox: the working directory %s of the container: %s; create it in the "
                        "image or choose another with -w\n",
                argv[1], strerror(errno));
        return EXIT_RUNTIME;
    }
    execvp(argv[2], argv + 2);
    if (errno == ENOENT || errno == ENOTDIR) {
        fprintf(stderr, "hpcbox: %s: not found in the container\n", argv[2]);
        return 127;
    }
    if (errno == ENOEXEC)
        return EXIT_RUNTIME;
    fprintf(stderr, "hpcbox: %s: %s\n", argv[2], strerror(errno));
    return 126;
}

/* The parent pid in /proc/PID/stat (after the command name, which may hold spaces and ')'). */
static pid_t parent_of(const char *pid)
{
    char path[64], text[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (got <= 0)
        return -1;
    text[got] = '\0';
    const char *end = strrchr(text, ')');
    char state;
    int ppid;
    if (!end || sscanf(end + 1, " %c %d", &state, &ppid) != 2)
        return -1;
    return (pid_t)ppid;
}

/* SIGKILL every process whose parent is this one (as a subreaper: every orphan of the tree too). */
static void kill_children(pid_t self)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    struct dirent *entry;
    while ((entry = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)entry->d_name[0]))
            continue;
        if (parent_of(entry->d_name) == self)
            kill((pid_t)atoi(entry->d_name), SIGKILL);
    }
    closedir(proc);
}

/* Kill and reap the whole tree below this process: orphans of the killed come back to us. */
static void end_tree(void)
{
    pid_t self = getpid();
    for (;;) {
        kill_children(self);
        if (waitpid(-1, NULL, 0) < 0 && errno != EINTR)
            return; /* ECHILD: nothing is left */
    }
}

static int status_to_exit(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return EXIT_RUNTIME;
}

static int is_forwarded(int sig)
{
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        if (forwarded[i] == sig)
            return 1;
    return 0;
}

/* Wait for the program, passing signals on; then end what it left. */
static int supervise(pid_t program, pid_t caller, const sigset_t *watched)
{
    for (;;) {
        siginfo_t info;
        if (sigwaitinfo(watched, &info) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "hpcbox: sigwaitinfo: %s\n", strerror(errno));
            kill(program, SIGKILL);
            end_tree();
            return EXIT_RUNTIME;
        }
        if (getppid() != caller) { /* the death signal: hpcbox run is gone */
            end_tree();
            return 128 + SIGKILL;
        }
        if (info.si_signo == SIGCHLD) {
            int status;
            pid_t done;
            while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
                if (done == program) {
                    end_tree();
                    return status_to_exit(status);
                }
            }
            continue;
        }
        if (sigismember(&ignored_at_start, info.si_signo))
            continue; /* the program ignores it too */
        if (is_forwarded(info.si_signo) || info.si_code != SI_KERNEL)
            kill(program, info.si_signo); /* a terminal's own signals reached the program already */
    }
}

int main(int argc, char **argv)
{
    if (hpcbox_version_asked(argc, argv)) /* a CWD is an absolute path: no clash */
        return hpcbox_version_print("hpcbox-preload-exec");
    if (argc < 3) {
        fprintf(stderr, "usage: hpcbox-preload-exec CWD PROGRAM [ARGS...] | --version\n");
        return EXIT_RUNTIME;
    }
    sigset_t watched, old_mask;
    watched_set(&watched);
    if (record_ignored(&watched) < 0)
        return EXIT_RUNTIME;
    if (sigprocmask(SIG_BLOCK, &watched, &old_mask) < 0) {
        fprintf(stderr, "hpcbox: sigprocmask: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    pid_t caller = getppid();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0) {
        fprintf(stderr, "hpcbox: prctl: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    if (getppid() != caller)
        return EXIT_RUNTIME; /* the caller died before the death signal was set */
    pid_t program = fork();
    if (program < 0) {
        fprintf(stderr, "hpcbox: fork the container's program: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    if (program == 0) /* fork cleared the death signal and the subreaper mark for it */
        _exit(exec_program(argv, &old_mask));
    return supervise(program, caller, &watched);
}

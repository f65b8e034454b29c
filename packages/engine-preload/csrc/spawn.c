/* posix_spawn/posix_spawnp (planned as an exec, plan.c), posix_spawn_file_actions_addopen (its
 * path translated), and system/popen/pclose (a fork and the wrapped exec of the container's
 * /bin/sh: libc's own would exec the host's /bin/sh untranslated). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "creds.h"
#include "exec.h"
#include "preload.h"

extern char **environ;

static int spawn(pid_t *pid, const char *file, bool search, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    long task = hp_exec_task();
    struct plan *p;
    int rc = -ENOENT;

    hp_exec_reclaim(task);
    p = hp_exec_alloc(sizeof(*p), task);
    if (!p)
        return ENOMEM;
    p->task = task;
    if (!search || strchr(file, '/')) {
        rc = hp_plan_exec(p, file, argv, envp);
    } else {
        const char *path = getenv("PATH");
        char full[PATH_MAX];
        bool denied = false;

        for (const char *s = path ? path : "/bin:/usr/bin";; s++) {
            const char *e = strchr(s, ':');
            size_t dlen = e ? (size_t)(e - s) : strlen(s);

            if (snprintf(full, sizeof(full), "%.*s%s%s", (int)dlen, s, dlen ? "/" : "", file) <
                (int)sizeof(full)) {
                rc = hp_plan_exec(p, full, argv, envp);
                if (rc == 0 || (rc != -ENOENT && rc != -EACCES && rc != -ENOTDIR))
                    break;
                denied |= rc == -EACCES;
                hp_plan_free(p);
            }
            if (!e) {
                rc = denied ? -EACCES : -ENOENT;
                break;
            }
            s = e;
        }
    }
    if (rc == 0)
        rc = -REAL(posix_spawn)(pid, p->host, fa, attr, p->argv, p->envp);
    hp_plan_free(p);
    hp_exec_free(p);
    return -rc;
}

WRAP int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                     const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (!hp_conf())
        return REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
    return spawn(pid, path, false, fa, attr, argv, envp);
}

WRAP int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                      const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (!hp_conf())
        return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
    return spawn(pid, file, true, fa, attr, argv, envp);
}

WRAP int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd, const char *path,
                                          int oflag, mode_t mode)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, (oflag & O_NOFOLLOW) ? 0 : HP_FOLLOW, buf);

    if (!p)
        p = path; /* the child's open then fails as it would have */
    return REAL(posix_spawn_file_actions_addopen)(fa, fd, p, oflag, mode);
}

/* ---- system, popen -------------------------------------------------------------------------- */
static pid_t shell(const char *command, int child_fd, int target_fd, int close_fd)
{
    pid_t pid = fork();

    if (pid == 0) {
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)command, NULL};

        if (child_fd >= 0 && child_fd != target_fd) {
            dup2(child_fd, target_fd);
            close(child_fd);
        }
        if (close_fd >= 0)
            close(close_fd);
        hp_execve("/bin/sh", argv, environ);
        _exit(127);
    }
    return pid;
}

WRAP int system(const char *command)
{
    struct sigaction ignore, old_int, old_quit;
    sigset_t block, old_mask;
    int status = -1;
    pid_t pid;

    if (!hp_conf())
        return REAL(system)(command);
    if (!command)
        return 1;
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGINT, &ignore, &old_int);
    sigaction(SIGQUIT, &ignore, &old_quit);
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)command, NULL};

        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        hp_execve("/bin/sh", argv, environ);
        _exit(127);
    }
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                status = -1;
                break;
            }
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return status;
}

struct popened {
    FILE *f;
    pid_t pid;
    struct popened *next;
};
static struct popened *popened_list;
static int popened_lock;

static void lock(void)
{
    while (__atomic_exchange_n(&popened_lock, 1, __ATOMIC_ACQUIRE))
        ;
}

static void unlock(void)
{
    __atomic_store_n(&popened_lock, 0, __ATOMIC_RELEASE);
}

WRAP FILE *popen(const char *command, const char *type)
{
    struct popened *entry;
    int fds[2], reading;
    pid_t pid;
    FILE *f;

    if (!hp_conf())
        return REAL(popen)(command, type);
    if (!type || (type[0] != 'r' && type[0] != 'w')) {
        errno = EINVAL;
        return NULL;
    }
    reading = type[0] == 'r';
    entry = malloc(sizeof(*entry));
    if (!entry)
        return NULL;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        free(entry);
        return NULL;
    }
    /* the child's end becomes its stdout (r) or stdin (w); dup2 clears O_CLOEXEC */
    pid = shell(command, fds[reading ? 1 : 0], reading ? 1 : 0, fds[reading ? 0 : 1]);
    close(fds[reading ? 1 : 0]);
    if (pid < 0) {
        close(fds[reading ? 0 : 1]);
        free(entry);
        return NULL;
    }
    f = fdopen(fds[reading ? 0 : 1], reading ? "r" : "w");
    if (!f) {
        close(fds[reading ? 0 : 1]);
        waitpid(pid, NULL, 0);
        free(entry);
        return NULL;
    }
    entry->f = f;
    entry->pid = pid;
    lock();
    entry->next = popened_list;
    popened_list = entry;
    unlock();
    return f;
}

WRAP int pclose(FILE *f)
{
    struct popened **at, *found = NULL;
    int status;

    lock();
    for (at = &popened_list; *at; at = &(*at)->next) {
        if ((*at)->f == f) {
            found = *at;
            *at = found->next;
            break;
        }
    }
    unlock();
    if (!found)
        return REAL(pclose)(f);
    fclose(f);
    while (waitpid(found->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            break;
        }
    }
    free(found);
    return status;
}

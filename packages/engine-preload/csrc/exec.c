/* The exec family (execve, execv, execvp(e), execl*, fexecve): each plans the exec (plan.c) and
 * runs the plan; execvp's PATH search is the guest's. posix_spawn, system and popen: spawn.c. */
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

/* The container changed its loader since the engine resolved it: look again. Apart, so that its
 * path buffer is not in every exec's stack frame (each page a forked child writes is a fault). */
static __attribute__((noinline)) int exec_with_loader_found_again(struct plan *p)
{
    char buf[PATH_MAX];
    const char *h = hp_path(AT_FDCWD, p->interp, HP_FOLLOW | HP_NOFAST, buf);

    if (h) { /* another loader, maybe of another glibc: without the engine's option */
        int rc = hp_plan_set(p, &p->host, h);

        if (rc < 0)
            return rc;
        hp_unmask_hwcaps(p);
        p->argv[0] = p->host;
        REAL(execve)(p->host, p->argv, p->envp);
    }
    return -errno;
}

int hp_execve(const char *path, char *const argv[], char *const envp[])
{
    struct plan *p;
    long task;
    int rc;

    if (!hp_conf())
        return REAL(execve)(path, argv, envp);
    task = hp_exec_task();
    hp_exec_reclaim(task); /* what earlier vfork children of this thread exec'd with */
    p = hp_exec_alloc(sizeof(*p), task);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    p->task = task;
    rc = hp_plan_exec(p, path, argv, envp);
    if (rc == 0 && p->trace) {
        rc = hp_exec_traced(p);
    } else if (rc == 0) {
        /* the system call itself (all libc's execve does): REAL's first lookup, in every forked
         * child that execs, costs dlsym and ~5 page faults */
        syscall(SYS_execve, p->host, p->argv, p->envp);
        rc = -errno;
        if (rc == -ENOENT && p->known_loader)
            rc = exec_with_loader_found_again(p);
    }
    hp_plan_free(p);
    hp_exec_free(p);
    errno = -rc;
    return -1;
}

/* execvp's search: the guest PATH of this process (as glibc and musl do), "/bin:/usr/bin" without
 * one; EACCES is remembered, ENOENT/ENOTDIR go on; a file of no known format runs with /bin/sh. */
int hp_execvpe(const char *file, char *const argv[], char *const envp[])
{
    const char *path = getenv("PATH");
    char full[PATH_MAX];
    bool denied = false;
    size_t flen;

    if (!hp_conf())
        return REAL(execvpe)(file, argv, envp);
    if (!file || !*file) {
        errno = ENOENT;
        return -1;
    }
    if (strchr(file, '/'))
        return hp_execve(file, argv, envp);
    if (!path)
        path = "/bin:/usr/bin";
    flen = strlen(file);
    for (const char *s = path;; s++) {
        const char *e = strchr(s, ':');
        size_t dlen = e ? (size_t)(e - s) : strlen(s);

        if (dlen + 1 + flen + 1 <= sizeof(full)) {
            if (dlen == 0) {
                memcpy(full, file, flen + 1);
            } else {
                memcpy(full, s, dlen);
                full[dlen] = '/';
                memcpy(full + dlen + 1, file, flen + 1);
            }
            hp_execve(full, argv, envp);
            if (errno == ENOEXEC) {
                char buf[PATH_MAX], interp[8];
                const char *h = hp_path(AT_FDCWD, full, HP_FOLLOW | HP_NOFAST, buf);

                if (h && hpcbox_preload_classify(h, interp, sizeof(interp)) == HPCBOX_EXEC_UNKNOWN) {
                    int argc = hp_count(argv);
                    char **sh = hp_exec_alloc(sizeof(char *) * (size_t)(argc + 2), hp_exec_task());

                    if (sh) {
                        sh[0] = (char *)"/bin/sh";
                        sh[1] = full;
                        for (int i = 1; i <= argc; i++)
                            sh[i + 1] = argv[i];
                        if (argc == 0)
                            sh[2] = NULL;
                        hp_execve("/bin/sh", sh, envp);
                        hp_exec_free(sh);
                    }
                }
                errno = ENOEXEC;
                return -1;
            }
            if (errno == EACCES)
                denied = true;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
                return -1;
        }
        if (!e)
            break;
        s = e;
    }
    errno = denied ? EACCES : ENOENT;
    return -1;
}

WRAP int execve(const char *path, char *const argv[], char *const envp[])
{
    return hp_execve(path, argv, envp);
}

WRAP int execv(const char *path, char *const argv[])
{
    return hp_execve(path, argv, environ);
}

WRAP int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return hp_execvpe(file, argv, envp);
}

WRAP int execvp(const char *file, char *const argv[])
{
    return hp_execvpe(file, argv, environ);
}

/* The variadic execs: collect the arguments (and execle's envp after the NULL). */
#define COLLECT(first, argv, ap, envp_out)                                                         \
    va_list ap;                                                                                    \
    int n_ = 1;                                                                                    \
    va_start(ap, first);                                                                           \
    while (va_arg(ap, char *))                                                                     \
        n_++;                                                                                      \
    va_end(ap);                                                                                    \
    char *argv[n_ + 1];                                                                            \
    argv[0] = (char *)(first);                                                                     \
    va_start(ap, first);                                                                           \
    for (int i_ = 1; i_ <= n_; i_++)                                                               \
        argv[i_] = va_arg(ap, char *);                                                             \
    envp_out = va_arg(ap, char **);                                                                \
    va_end(ap);

WRAP int execl(const char *path, const char *arg, ...)
{
    char **ignored;
    COLLECT(arg, argv, ap, ignored)
    (void)ignored;
    return hp_execve(path, argv, environ);
}

WRAP int execlp(const char *file, const char *arg, ...)
{
    char **ignored;
    COLLECT(arg, argv, ap, ignored)
    (void)ignored;
    return hp_execvpe(file, argv, environ);
}

WRAP int execle(const char *path, const char *arg, ...)
{
    char **envp;
    COLLECT(arg, argv, ap, envp)
    return hp_execve(path, argv, envp);
}

WRAP int fexecve(int fd, char *const argv[], char *const envp[])
{
    char link[64], host[PATH_MAX], guest[PATH_MAX];
    ssize_t n;

    if (!hp_conf())
        return REAL(fexecve)(fd, argv, envp);
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = (ssize_t)syscall(SYS_readlinkat, AT_FDCWD, link, host, sizeof(host) - 1);
    if (n < 0)
        return -1;
    host[n] = '\0';
    hp_guest(host, guest, sizeof(guest));
    return hp_execve(guest, argv, envp);
}


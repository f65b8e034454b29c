/* The container's own loader run directly (ldd, `ld-linux-x86-64.so.2 [OPTIONS] PROG`): planned
 * like any exec, with the program argument translated and the loader's own options kept; and
 * ld.so's listing of libraries (ldd, --list, LD_TRACE_LOADED_OBJECTS), which prints host paths:
 * run as a child whose output is copied with the paths mapped back to the guest. */
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

/* The container's own loader, run directly (ldd, `ld-linux-x86-64.so.2 PROG`): no PT_INTERP, so
 * it looks static; recognised by its name, canonical in the guest. */
bool hp_is_loader(const struct plan *p)
{
    const char *slash = strrchr(p->exe, '/');
    const char *name = slash ? slash + 1 : p->exe;

    if (!strstr(name, ".so"))
        return false;
    return strncmp(name, "ld-linux", 8) == 0 || strncmp(name, "ld-musl-", 8) == 0 ||
           (strncmp(name, "ld-", 3) == 0 && name[3] >= '0' && name[3] <= '9');
}

/* Options of glibc's and musl's ld.so that take an argument. */
static bool loader_takes_arg(const char *opt)
{
    static const char *const with_arg[] = {"--library-path", "--preload", "--audit", "--argv0",
                                           "--inhibit-rpath", "--glibc-hwcaps-prepend",
                                           "--glibc-hwcaps-mask", NULL};

    for (int i = 0; with_arg[i]; i++) {
        if (strcmp(opt, with_arg[i]) == 0)
            return true;
    }
    return false;
}

static bool named_ldd(char *const argv[], int argc)
{
    const char *slash;

    if (argc < 1)
        return false;
    slash = strrchr(argv[0], '/');
    return strcmp(slash ? slash + 1 : argv[0], "ldd") == 0;
}

/* The guest ran the container's loader (p->prog, p->exe) with `LOADER [OPTIONS] [PROG ARGS]`: run it
 * with the program translated, the container's library path (its own --library-path or
 * LD_LIBRARY_PATH first) and no ld.so.cache, as any other exec; musl's loader called "ldd" lists. */
int hp_plan_loader(struct plan *p, char *const argv[], char *const envp[])
{
    int argc = hp_count(argv), prog = 0, k, rc;
    const char *user = hp_env_value(envp, "LD_LIBRARY_PATH"), *argv0 = NULL;
    char *prog_host = p->paths[0];
    bool list;

    if ((rc = hp_plan_set(p, &p->host, p->prog)) < 0 || (rc = hp_plan_set(p, &p->interp, p->exe)) < 0)
        return rc;
    p->musl = strstr(strrchr(p->exe, '/') ? strrchr(p->exe, '/') : p->exe, "musl") != NULL;
    list = p->musl && named_ldd(argv, argc);
    p->trace = list || hp_env_value(envp, "LD_TRACE_LOADED_OBJECTS") != NULL;
    for (int i = 1; i < argc && !prog; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            prog = i;
        } else if (strcmp(argv[i], "--list") == 0) {
            p->trace = true;
        } else if (loader_takes_arg(argv[i]) && i + 1 < argc) {
            if (strcmp(argv[i], "--library-path") == 0)
                user = argv[i + 1];
            else if (strcmp(argv[i], "--argv0") == 0)
                argv0 = argv[i + 1];
            i++;
        }
    }
    if (prog) {
        char *room = hp_plan_room(p);

        rc = room ? hp_canonical(AT_FDCWD, argv[prog], HP_FOLLOW, room) : -ENOMEM;
        if (rc == 0) {
            hp_plan_keep(p, &p->exe);
            rc = gp_map_canonical(&hp_conf()->ctx, p->exe, prog_host, PATH_MAX);
        }
        if (rc < 0) { /* the loader says what is wrong with it */
            if ((rc = hp_plan_set(p, &p->exe, argv[prog])) < 0)
                return rc;
            snprintf(prog_host, PATH_MAX, "%s", argv[prog]);
        }
        if (!argv0)
            argv0 = argv[prog];
    } else if (!argv0) {
        argv0 = argc > 0 ? argv[0] : p->exe;
    }
    rc = hp_libpath_for(p, user);
    if (rc == 0)
        rc = hp_build_env(p, envp, argv0);
    if (rc < 0)
        return rc;
    k = hp_loader_argv(p, argc, argv0);
    if (k < 0)
        return k;
    if (list)
        p->argv[k++] = (char *)"--list";
    for (int i = 1; i < (prog ? prog : argc); i++) {
        bool ours = strcmp(argv[i], "--library-path") == 0 || strcmp(argv[i], "--argv0") == 0;

        if (ours && i + 1 < argc) { /* replaced above (glibc's argv[0] through the environment) */
            i++;
        } else if (loader_takes_arg(argv[i]) && i + 1 < argc) {
            p->argv[k++] = argv[i];
            p->argv[k++] = argv[++i];
        } else if (strcmp(argv[i], "--inhibit-cache") != 0) {
            p->argv[k++] = argv[i];
        }
    }
    if (prog) {
        p->argv[k++] = prog_host;
        for (int i = prog + 1; i < argc; i++)
            p->argv[k++] = argv[i];
    }
    p->argv[k] = NULL;
    hp_debug("hpcbox-preload: exec of the loader %s (%s) for %s", p->interp, p->host,
             prog ? argv[prog] : "no program");
    return 0;
}

/* Write all of buf; 0 or -errno. */
static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One line of ld.so's listing with every word that is an absolute host path mapped to the guest. */
static int put_mapped_line(int fd, const char *line, size_t n)
{
    char word[PATH_MAX], guest[PATH_MAX];
    size_t i = 0;

    while (i < n) {
        size_t j = i;

        if (line[i] != '/' || (i > 0 && line[i - 1] != ' ' && line[i - 1] != '\t')) {
            while (j < n && line[j] != ' ' && line[j] != '\t')
                j++;
            while (j < n && (line[j] == ' ' || line[j] == '\t'))
                j++;
            if (write_all(fd, line + i, j - i) < 0)
                return -errno;
            i = j;
            continue;
        }
        while (j < n && line[j] != ' ' && line[j] != '\t' && line[j] != '\n')
            j++;
        if (j - i < sizeof(word)) {
            memcpy(word, line + i, j - i);
            word[j - i] = '\0';
            hp_guest(word, guest, sizeof(guest));
        } else {
            snprintf(guest, sizeof(guest), "%.*s", (int)(sizeof(guest) - 1), line + i);
        }
        if (write_all(fd, guest, strlen(guest)) < 0)
            return -errno;
        i = j;
    }
    return 0;
}

/* ld.so listing libraries (ldd, --list, LD_TRACE_LOADED_OBJECTS) prints the host paths it
 * loaded: it runs as a child whose output is copied to stdout with the paths mapped back, and this
 * process then ends as the child did (as if it had been replaced). -errno when it cannot start. */
int hp_exec_traced(struct plan *p)
{
    char buf[4096], line[2 * PATH_MAX];
    size_t len = 0;
    int fds[2], status;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int rc = -errno;

        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (pid == 0) {
        if (dup2(fds[1], 1) == 1)
            REAL(execve)(p->host, p->argv, p->envp);
        hp_say("hpcbox-preload: %s: %s", p->host, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            line[len++] = buf[i];
            if (buf[i] == '\n' || len == sizeof(line)) {
                put_mapped_line(1, line, len);
                len = 0;
            }
        }
    }
    if (len)
        put_mapped_line(1, line, len);
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            _exit(127);
    }
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
        _exit(128 + WTERMSIG(status));
    }
    _exit(WEXITSTATUS(status));
}


/* exec: the kernel would load the host's PT_INTERP and none of this library, so every exec runs
 * the container's loader explicitly:
 *
 *   glibc: LOADER --library-path LIBPATH --inhibit-cache PROGRAM ARGS...  (argv[0] via the
 *          environment: the constructor in config.c puts it back, also on loaders without --argv0)
 *   musl:  LOADER --library-path LIBPATH --argv0 ARGV0 PROGRAM ARGS...
 *
 * with LD_PRELOAD (the build of this library for that libc) and the configuration put back into
 * the environment, also when the program cleared it. "#!" is followed here (the kernel would read
 * the interpreter from the host). Static executables cannot be intercepted: ENOEXEC and one line
 * naming the fix. Also execvp's PATH search (the guest's PATH), posix_spawn, system, popen. */
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
#include "preload.h"

extern char **environ;

#define MAX_SCRIPTS 4   /* nested #! interpreters, as Linux's BINPRM_MAX_RECURSION */
#define MAX_PREFIX (3 * MAX_SCRIPTS + 1)

struct plan {
    char host[PATH_MAX];       /* what execve gets: the container's loader, on the host */
    char prog[PATH_MAX];       /* the program, on the host */
    char exe[PATH_MAX];        /* the program, canonical in the guest (for /proc/self/exe) */
    char interp[PATH_MAX];     /* its PT_INTERP (guest) */
    char script[MAX_SCRIPTS][2][256]; /* "#!" interpreter and argument of each level */
    char paths[MAX_SCRIPTS][PATH_MAX]; /* the guest path each level executed */
    const char *pre[MAX_PREFIX];  /* argv built by "#!" levels; then the caller's from `skip` */
    int npre;
    int skip;
    bool musl;
    bool known_loader;         /* p->host came from the engine's list, not from a walk now */
    bool trace;                /* ld.so lists libraries (ldd): output mapped back, no LD_PRELOAD */
    char **argv, **envp;       /* malloc'ed; strings point into this plan, the caller's or keep */
    char *libpath, *env_exe, *env_argv0, *env_preload, *env_comm;
    char comm[16];             /* the kernel's process name for an exec of the given path */
    char env_creds[sizeof(HP_ENV_CREDS) + 11 * (6 + CREDS_MAX_GROUPS)];
    char *tracer;              /* a static program: a copy of the tracer's command line prefix */
    char ids[2][16];
};

static void plan_free(struct plan *p)
{
    free(p->argv);
    free(p->envp);
    free(p->libpath);
    free(p->env_exe);
    free(p->env_argv0);
    free(p->env_preload);
    free(p->env_comm);
    free(p->tracer);
}

static int count(char *const v[])
{
    int n = 0;

    while (v && v[n])
        n++;
    return n;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);

    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

/* "#!interp [arg]" of the host file into plan->script[level]; -ENOEXEC when malformed. */
static int read_shebang(const char *host, char interp[256], char arg[256])
{
    char line[258];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, host, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    char *s, *e, *nl;

    if (fd < 0)
        return -errno;
    n = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (n < 2)
        return -ENOEXEC;
    line[n] = '\0';
    nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    else if (n == (ssize_t)sizeof(line) - 1)
        return -ENAMETOOLONG;
    for (s = line + 2; *s == ' ' || *s == '\t'; s++)
        ;
    for (e = s; *e && *e != ' ' && *e != '\t'; e++)
        ;
    if (e == s)
        return -ENOEXEC;
    memcpy(interp, s, (size_t)(e - s));
    interp[e - s] = '\0';
    for (s = e; *s == ' ' || *s == '\t'; s++)
        ;
    for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'); e--)
        ;
    memcpy(arg, s, (size_t)(e - s));
    arg[e - s] = '\0';
    return 0;
}

/* The argv of the current level as (prefix, caller's argv from skip). */
static const char *arg_at(const struct plan *p, char *const argv[], int i)
{
    if (i < p->npre)
        return p->pre[i];
    return argv[p->skip + i - p->npre];
}

static int static_refusal(const char *guest)
{
    hp_say("hpcbox-preload: %s is statically linked: the preload engine cannot run it alone; "
           "install hpcbox-engine-ptrace (preload hands such programs to its tracer) or use "
           "--engine ptrace or --engine runc",
           guest);
    return -ENOEXEC;
}

static const char *env_value(char *const envp[], const char *name)
{
    size_t n = strlen(name);
    const char *v = NULL;

    for (int i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            v = envp[i] + n + 1;
    }
    return v;
}

/* The loader's --library-path: the guest directories of `user` (the container's LD_LIBRARY_PATH
 * or a --library-path of its own), translated, then the container's library directories. */
static int libpath_for(struct plan *p, const char *user)
{
    const struct hp_config *c = hp_conf();
    const char *base = p->musl ? c->libpath_musl : c->libpath;
    size_t cap, len = 0;

    cap = strlen(base) + 1 + (user ? (strlen(user) + 1) * 2 + PATH_MAX : 0);
    p->libpath = malloc(cap + PATH_MAX);
    if (!p->libpath)
        return -ENOMEM;
    p->libpath[0] = '\0';
    if (user) { /* guest directories of the container's LD_LIBRARY_PATH come first */
        char *copy = strdup(user), *dir, *save = NULL;

        if (!copy)
            return -ENOMEM;
        for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
            char buf[PATH_MAX];
            const char *h = dir[0] == '/' ? hp_path(AT_FDCWD, dir, HP_FOLLOW | HP_NOFAST, buf) : NULL;
            size_t hl = h ? strlen(h) : 0;

            if (!h || len + hl + 2 > cap)
                continue;
            memcpy(p->libpath + len, h, hl);
            len += hl;
            p->libpath[len++] = ':';
            p->libpath[len] = '\0';
        }
        free(copy);
    }
    memcpy(p->libpath + len, base, strlen(base) + 1);
    return 0;
}

static bool drop_from_env(const char *entry)
{
    return strncmp(entry, "LD_PRELOAD=", 11) == 0 || strncmp(entry, "HPCBOX_PRELOAD_", 15) == 0;
}

static int build_env(struct plan *p, char *const envp[], const char *argv0)
{
    const struct hp_config *c = hp_conf();
    const char *lib = p->musl ? c->lib_musl : c->lib_glibc;
    int n = count(envp), k = 0;

    if (!lib) {
        hp_say("hpcbox-preload: no %s build of the library is configured; %s runs untranslated",
               p->musl ? "musl" : "glibc", p->exe);
        return -ENOEXEC;
    }
    p->env_preload = concat("LD_PRELOAD=", lib);
    p->env_exe = concat(HP_ENV_EXE "=", p->exe);
    p->env_argv0 = concat(HP_ENV_ARGV0 "=", argv0);
    p->env_comm = concat(HP_ENV_COMM "=", p->comm);
    p->envp = malloc(sizeof(char *) * (size_t)(n + HP_N_KEEP + 7));
    if (!p->env_preload || !p->env_exe || !p->env_argv0 || !p->env_comm || !p->envp)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        if (!drop_from_env(envp[i]))
            p->envp[k++] = envp[i];
    }
    if (!p->trace) /* listing libraries: the library would be listed and is not needed */
        p->envp[k++] = p->env_preload;
    for (int i = 0; i < HP_N_KEEP; i++) {
        if (c->keep[i])
            p->envp[k++] = c->keep[i];
    }
    p->envp[k++] = p->env_exe;
    if (c->fake_ids && hp_creds_env(p->env_creds, sizeof(p->env_creds)) == 0)
        p->envp[k++] = p->env_creds;
    if (!p->musl)
        p->envp[k++] = p->env_argv0;
    if (p->comm[0])
        p->envp[k++] = p->env_comm;
    p->envp[k] = NULL;
    return 0;
}

/* The container's own loader, run directly (ldd, `ld-linux-x86-64.so.2 PROG`): no PT_INTERP, so
 * it looks static; recognised by its name, canonical in the guest. */
static bool is_loader(const struct plan *p)
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
static int plan_loader(struct plan *p, char *const argv[], char *const envp[])
{
    int argc = count(argv), prog = 0, k = 0, rc;
    const char *user = env_value(envp, "LD_LIBRARY_PATH"), *argv0 = NULL;
    char *prog_host = p->paths[0];
    bool list;

    snprintf(p->host, sizeof(p->host), "%s", p->prog);
    snprintf(p->interp, sizeof(p->interp), "%s", p->exe);
    p->musl = strstr(strrchr(p->exe, '/') ? strrchr(p->exe, '/') : p->exe, "musl") != NULL;
    list = p->musl && named_ldd(argv, argc);
    p->trace = list || env_value(envp, "LD_TRACE_LOADED_OBJECTS") != NULL;
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
        rc = hp_canonical(AT_FDCWD, argv[prog], HP_FOLLOW, p->exe);
        if (rc == 0)
            rc = gp_map_canonical(&hp_conf()->ctx, p->exe, prog_host, PATH_MAX);
        if (rc < 0) { /* the loader says what is wrong with it */
            snprintf(p->exe, sizeof(p->exe), "%s", argv[prog]);
            snprintf(prog_host, PATH_MAX, "%s", argv[prog]);
        }
        if (!argv0)
            argv0 = argv[prog];
    } else if (!argv0) {
        argv0 = argc > 0 ? argv[0] : p->exe;
    }
    rc = libpath_for(p, user);
    if (rc == 0)
        rc = build_env(p, envp, argv0);
    if (rc < 0)
        return rc;
    p->argv = malloc(sizeof(char *) * (size_t)(argc + 8));
    if (!p->argv)
        return -ENOMEM;
    p->argv[k++] = p->host;
    p->argv[k++] = (char *)"--library-path";
    p->argv[k++] = p->libpath;
    if (p->musl) {
        p->argv[k++] = (char *)"--argv0";
        p->argv[k++] = (char *)argv0;
    } else {
        p->argv[k++] = (char *)"--inhibit-cache";
    }
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

/* A statically linked program (the library cannot enter it): run it under the ptrace engine's
 * tracer, with the same rootfs and bindings (the engine's prefix, HP_ENV_PTRACE), this process's
 * guest cwd and effective ids; the tracer follows it and its children. The program's environment
 * without LD_PRELOAD and the configuration (the tracer runs programs with the guest's loader).
 * `cur` is the static program's guest path; the arguments are the plan's (#! levels included). */
static int plan_ptrace(struct plan *p, const char *cur, char *const argv[], char *const envp[])
{
    const struct hp_config *c = hp_conf();
    int argc = count(argv), n = 1, k = 0, total, rc;
    uid_t uid = c->fake_ids ? hp_fake_euid() : getuid();
    gid_t gid = c->fake_ids ? getegid() : getgid();

    p->known_loader = p->trace = false;
    if (!c->ptrace || !*c->ptrace)
        return static_refusal(cur);
    p->tracer = strdup(c->ptrace);
    rc = hp_guest_cwd(p->interp, sizeof(p->interp));
    if (!p->tracer)
        return -ENOMEM;
    if (rc != 0) /* a cwd outside the guest: the tracer starts at the guest root */
        snprintf(p->interp, sizeof(p->interp), "/");
    for (const char *q = p->tracer; *q; q++)
        n += *q == '\n';
    total = p->npre + (argc - p->skip);
    p->argv = malloc(sizeof(char *) * (size_t)(n + total + 10));
    p->envp = malloc(sizeof(char *) * (size_t)(count(envp) + 1));
    if (!p->argv || !p->envp)
        return -ENOMEM;
    for (char *line = p->tracer, *nl; line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        p->argv[k++] = line;
    }
    snprintf(p->host, sizeof(p->host), "%s", p->argv[0]);
    snprintf(p->ids[0], sizeof(p->ids[0]), "%u", (unsigned)uid);
    snprintf(p->ids[1], sizeof(p->ids[1]), "%u", (unsigned)gid);
    p->argv[k++] = (char *)"--cwd";
    p->argv[k++] = p->interp;
    p->argv[k++] = (char *)"--uid";
    p->argv[k++] = p->ids[0];
    p->argv[k++] = (char *)"--gid";
    p->argv[k++] = p->ids[1];
    p->argv[k++] = (char *)"--";
    p->argv[k++] = (char *)cur;
    for (int i = 1; i < total; i++)
        p->argv[k++] = (char *)arg_at(p, argv, i);
    p->argv[k] = NULL;
    k = 0;
    for (int i = 0; envp && envp[i]; i++) {
        if (!drop_from_env(envp[i]))
            p->envp[k++] = envp[i];
    }
    p->envp[k] = NULL;
    hp_debug("hpcbox-preload: %s is statically linked: exec under %s", cur, p->host);
    return 0;
}

/* Work out what to execute for the guest `path`; 0 or -errno. */
static int plan_exec(struct plan *p, const char *path, char *const argv[], char *const envp[])
{
    const char *cur = path;
    char buf[PATH_MAX];
    int argc = count(argv), level = 0, kind, rc;

    /* no memset of the whole plan (36 KiB): every page touched is a page fault in a forked child */
    p->host[0] = p->prog[0] = p->exe[0] = p->interp[0] = '\0';
    p->npre = 0;
    p->skip = 0;
    p->argv = p->envp = NULL;
    p->libpath = p->env_exe = p->env_argv0 = p->env_preload = p->env_comm = p->tracer = NULL;
    {
        const char *slash = strrchr(path, '/');

        snprintf(p->comm, sizeof(p->comm), "%s", slash ? slash + 1 : path);
    }
    if (hp_conf()->exe[0] && hp_is_proc_exe(path))
        cur = hp_conf()->exe; /* the program again, not its loader (procself.c) */
    for (;;) {
        struct stat st;

        /* one walk: the canonical guest path (for /proc/self/exe), mapped to the host */
        rc = hp_canonical(AT_FDCWD, cur, HP_FOLLOW, p->exe);
        if (rc == 0)
            rc = gp_map_canonical(&hp_conf()->ctx, p->exe, p->prog, sizeof(p->prog));
        if (rc == -EXDEV) { /* relative to a cwd outside the guest: as the kernel sees it */
            snprintf(p->exe, sizeof(p->exe), "%s", cur);
            snprintf(p->prog, sizeof(p->prog), "%s", cur);
            rc = 0;
        }
        if (rc < 0)
            return rc;
        if (syscall(SYS_newfstatat, AT_FDCWD, p->prog, &st, 0) < 0)
            return -errno;
        if (S_ISDIR(st.st_mode) || syscall(SYS_faccessat, AT_FDCWD, p->prog, X_OK) < 0)
            return -EACCES;
        kind = hpcbox_preload_classify(p->prog, p->interp, sizeof(p->interp));
        if (kind < 0)
            return kind;
        if (kind == HPCBOX_EXEC_UNKNOWN)
            return -ENOEXEC;
        if (kind == HPCBOX_EXEC_STATIC && level == 0 && is_loader(p))
            return plan_loader(p, argv, envp);
        if (kind == HPCBOX_EXEC_STATIC)
            return plan_ptrace(p, cur, argv, envp);
        if (kind == HPCBOX_EXEC_DYNAMIC)
            break;
        /* "#!": interp [arg] path argv[1..] */
        if (level == MAX_SCRIPTS)
            return -ELOOP;
        rc = read_shebang(p->prog, p->script[level][0], p->script[level][1]);
        if (rc < 0)
            return rc;
        snprintf(p->paths[level], sizeof(p->paths[level]), "%s", cur);
        {
            const char *old[MAX_PREFIX];
            int nold = p->npre, k = 0;

            memcpy(old, p->pre, sizeof(old));
            p->pre[k++] = p->script[level][0];
            if (p->script[level][1][0])
                p->pre[k++] = p->script[level][1];
            p->pre[k++] = p->paths[level];
            if (nold > 0) {
                for (int i = 1; i < nold && k < MAX_PREFIX; i++)
                    p->pre[k++] = old[i];
            } else if (argc > 0) {
                p->skip = 1;
            }
            p->npre = k;
        }
        cur = p->script[level][0];
        level++;
    }
    p->musl = strstr(p->interp, "ld-musl") != NULL;
    p->known_loader = hp_known_loader(p->interp, p->host, sizeof(p->host));
    if (!p->known_loader) {
        const char *h = hp_path(AT_FDCWD, p->interp, HP_FOLLOW | HP_NOFAST, buf);

        if (!h)
            return -errno;
        snprintf(p->host, sizeof(p->host), "%s", h);
    }
    rc = libpath_for(p, env_value(envp, "LD_LIBRARY_PATH"));
    if (rc < 0)
        return rc;
    p->trace = env_value(envp, "LD_TRACE_LOADED_OBJECTS") != NULL;
    {
        int total = p->npre + (argc - p->skip);
        const char *argv0 = total > 0 ? arg_at(p, argv, 0) : cur;
        int k = 0;

        rc = build_env(p, envp, argv0);
        if (rc < 0)
            return rc;
        p->argv = malloc(sizeof(char *) * (size_t)(total + 8));
        if (!p->argv)
            return -ENOMEM;
        p->argv[k++] = p->host;
        p->argv[k++] = (char *)"--library-path";
        p->argv[k++] = p->libpath;
        if (p->musl) {
            p->argv[k++] = (char *)"--argv0";
            p->argv[k++] = (char *)argv0;
        } else {
            p->argv[k++] = (char *)"--inhibit-cache";
        }
        p->argv[k++] = p->prog;
        for (int i = 1; i < total; i++)
            p->argv[k++] = (char *)arg_at(p, argv, i);
        p->argv[k] = NULL;
    }
    hp_debug("hpcbox-preload: exec %s (%s) with %s", cur, p->prog, p->host);
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
static int exec_traced(struct plan *p)
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

int hp_execve(const char *path, char *const argv[], char *const envp[])
{
    struct plan *p;
    int rc;

    if (!hp_conf())
        return REAL(execve)(path, argv, envp);
    p = malloc(sizeof(*p));
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    rc = plan_exec(p, path, argv, envp);
    if (rc == 0 && p->trace) {
        rc = exec_traced(p);
    } else if (rc == 0) {
        REAL(execve)(p->host, p->argv, p->envp);
        rc = -errno;
        if (rc == -ENOENT && p->known_loader) { /* the container changed its loader: look again */
            char buf[PATH_MAX];
            const char *h = hp_path(AT_FDCWD, p->interp, HP_FOLLOW | HP_NOFAST, buf);

            if (h) {
                snprintf(p->host, sizeof(p->host), "%s", h);
                REAL(execve)(p->host, p->argv, p->envp);
            }
            rc = -errno;
        }
    }
    plan_free(p);
    free(p);
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
                    int argc = count(argv);
                    char **sh = malloc(sizeof(char *) * (size_t)(argc + 2));

                    if (sh) {
                        sh[0] = (char *)"/bin/sh";
                        sh[1] = full;
                        for (int i = 1; i <= argc; i++)
                            sh[i + 1] = argv[i];
                        if (argc == 0)
                            sh[2] = NULL;
                        hp_execve("/bin/sh", sh, envp);
                        free(sh);
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

/* ---- posix_spawn ---------------------------------------------------------------------------- */
static int spawn(pid_t *pid, const char *file, bool search, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    struct plan *p = malloc(sizeof(*p));
    int rc = -ENOENT;

    if (!p)
        return ENOMEM;
    if (!search || strchr(file, '/')) {
        rc = plan_exec(p, file, argv, envp);
    } else {
        const char *path = getenv("PATH");
        char full[PATH_MAX];
        bool denied = false;

        for (const char *s = path ? path : "/bin:/usr/bin";; s++) {
            const char *e = strchr(s, ':');
            size_t dlen = e ? (size_t)(e - s) : strlen(s);

            if (snprintf(full, sizeof(full), "%.*s%s%s", (int)dlen, s, dlen ? "/" : "", file) <
                (int)sizeof(full)) {
                rc = plan_exec(p, full, argv, envp);
                if (rc == 0 || (rc != -ENOENT && rc != -EACCES && rc != -ENOTDIR))
                    break;
                denied |= rc == -EACCES;
                plan_free(p);
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
    plan_free(p);
    free(p);
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

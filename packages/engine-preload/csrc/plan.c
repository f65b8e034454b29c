/* Exec planning: what an exec of a guest path runs instead (exec.h's struct plan). The kernel would
 * load the host's PT_INTERP and none of this library, so every exec runs the container's loader
 * explicitly:
 *
 *   glibc: LOADER --library-path LIBPATH --inhibit-cache PROGRAM ARGS...  (argv[0] via the
 *          environment: the constructor in init.c puts it back, also on loaders without --argv0)
 *   musl:  LOADER --library-path LIBPATH --argv0 ARGV0 PROGRAM ARGS...
 *
 * with LD_PRELOAD (the build of this library for that libc) and the configuration put back into
 * the environment, also when the program cleared it. "#!" is followed here (the kernel would read
 * the interpreter from the host). Static executables go to the ptrace engine's tracer when it is
 * installed, else ENOEXEC and one line naming the fix. The loader run directly: loader.c. */
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

void hp_plan_free(struct plan *p)
{
    hp_exec_free(p->argv);
    hp_exec_free(p->envp);
    hp_exec_free(p->libpath);
    hp_exec_free(p->env_exe);
    hp_exec_free(p->env_argv0);
    hp_exec_free(p->env_preload);
    hp_exec_free(p->env_comm);
    hp_exec_free(p->tracer);
}

void hp_plan_reset(struct plan *p)
{
    p->text[0] = '\0';
    p->used = 1;
    p->host = p->prog = p->exe = p->interp = p->text;
}

char *hp_plan_room(struct plan *p)
{
    return sizeof(p->text) - p->used >= PATH_MAX ? p->text + p->used : NULL;
}

void hp_plan_keep(struct plan *p, char **field)
{
    *field = p->text + p->used;
    p->used += strlen(*field) + 1;
}

int hp_plan_set(struct plan *p, char **field, const char *s)
{
    char *room = hp_plan_room(p);
    size_t n = strnlen(s, PATH_MAX - 1);

    if (!room)
        return -ENOMEM;
    memcpy(room, s, n);
    room[n] = '\0';
    hp_plan_keep(p, field);
    return 0;
}

int hp_count(char *const v[])
{
    int n = 0;

    while (v && v[n])
        n++;
    return n;
}

static char *concat(const struct plan *p, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = hp_exec_alloc(la + lb + 1, p->task);

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

const char *hp_env_value(char *const envp[], const char *name)
{
    size_t n = strlen(name);
    const char *v = NULL;

    for (int i = 0; envp && envp[i]; i++) { /* (the first letter first: an exec looks up several) */
        if (envp[i][0] == name[0] && strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            v = envp[i] + n + 1;
    }
    return v;
}

/* The loader's --library-path: the guest directories of `user` (the container's LD_LIBRARY_PATH
 * or a --library-path of its own), translated, then the container's library directories. */
int hp_libpath_for(struct plan *p, const char *user)
{
    const struct hp_config *c = hp_conf();
    const char *base = p->musl ? c->libpath_musl : c->libpath;
    size_t cap, len = 0;

    cap = strlen(base) + 1 + (user ? (strlen(user) + 1) * 2 + PATH_MAX : 0);
    /* the directories take less than cap, then base: not PATH_MAX more (a forked child writes the
     * page after, a page fault) */
    p->libpath = hp_exec_alloc(cap + strlen(base) + 1, p->task);
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

bool hp_drop_from_env(const char *entry)
{
    return (entry[0] == 'L' && strncmp(entry, "LD_PRELOAD=", 11) == 0) ||
           (entry[0] == 'H' && strncmp(entry, HP_ENV_PREFIX, sizeof(HP_ENV_PREFIX) - 1) == 0);
}

int hp_loader_argv(struct plan *p, int more, const char *argv0)
{
    int k = 0;

    p->argv = hp_exec_alloc(sizeof(char *) * (size_t)(more + 8), p->task);
    if (!p->argv)
        return -ENOMEM;
    p->argv[k++] = p->host;
    p->argv[k++] = (char *)"--library-path";
    p->argv[k++] = p->libpath;
    if (p->musl) {
        p->argv[k++] = (char *)"--argv0";
        p->argv[k++] = (char *)argv0;
    } else {
        if (p->mask_hwcaps) { /* after the engine's check: glibc >= 2.33, no such subdirectory */
            p->argv[k++] = (char *)"--glibc-hwcaps-mask";
            p->argv[k++] = (char *)"";
        }
        p->argv[k++] = (char *)"--inhibit-cache"; /* last: the constructor finds the program after it */
    }
    return k;
}

void hp_unmask_hwcaps(struct plan *p)
{
    if (p->envp && p->hwcap_at >= 0) /* the last two entries (hp_build_env) */
        p->envp[p->hwcap_at] = NULL;
    p->hwcap_at = -1;
    p->mask_legacy = false;
    if (!p->mask_hwcaps || !p->argv)
        return;
    for (int i = 3; p->argv[i]; i++) /* argv[3], argv[4]: the option and its value */
        p->argv[i] = p->argv[i + 2];
    p->mask_hwcaps = false;
}

int hp_build_env(struct plan *p, char *const envp[], const char *argv0)
{
    const struct hp_config *c = hp_conf();
    const char *lib = p->musl ? c->lib_musl : c->lib_glibc;
    int n = hp_count(envp), k = 0;

    if (!lib) {
        hp_say("hpcbox-preload: no %s build of the library is configured; %s runs untranslated",
               p->musl ? "musl" : "glibc", p->exe);
        return -ENOEXEC;
    }
    p->env_preload = concat(p, "LD_PRELOAD=", lib);
    p->env_exe = concat(p, HP_ENV_EXE "=", p->exe);
    p->env_argv0 = concat(p, HP_ENV_ARGV0 "=", argv0);
    p->env_comm = concat(p, HP_ENV_COMM "=", p->comm);
    p->envp = hp_exec_alloc(sizeof(char *) * (size_t)(n + HP_N_KEEP + 9), p->task);
    if (!p->env_preload || !p->env_exe || !p->env_argv0 || !p->env_comm || !p->envp)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        if (!hp_drop_from_env(envp[i]))
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
    p->hwcap_at = -1;
    if (p->mask_legacy && !p->musl) { /* last: hp_unmask_hwcaps cuts them off; init.c takes them out */
        p->hwcap_at = k;
        p->envp[k++] = (char *)HP_HWCAP_MASK "=0";
        p->envp[k++] = (char *)HP_ENV_HWCAP "=1";
    }
    p->envp[k] = NULL;
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
    int argc = hp_count(argv), n = 1, k = 0, total, rc;
    uid_t uid = c->fake_ids ? hp_fake_euid() : getuid();
    gid_t gid = c->fake_ids ? getegid() : getgid();
    char *room;

    p->known_loader = p->mask_hwcaps = p->mask_legacy = p->trace = false;
    if (!c->ptrace || !*c->ptrace)
        return static_refusal(cur);
    p->tracer = hp_exec_alloc(strlen(c->ptrace) + 1, p->task);
    if (p->tracer)
        memcpy(p->tracer, c->ptrace, strlen(c->ptrace) + 1);
    room = hp_plan_room(p);
    if (!p->tracer || !room)
        return -ENOMEM;
    if (hp_guest_cwd(room, PATH_MAX) == 0)
        hp_plan_keep(p, &p->interp);
    else if ((rc = hp_plan_set(p, &p->interp, "/")) < 0) /* a cwd outside the guest: the guest root */
        return rc;
    for (const char *q = p->tracer; *q; q++)
        n += *q == '\n';
    total = p->npre + (argc - p->skip);
    p->argv = hp_exec_alloc(sizeof(char *) * (size_t)(n + total + 10), p->task);
    p->envp = hp_exec_alloc(sizeof(char *) * (size_t)(hp_count(envp) + 1), p->task);
    if (!p->argv || !p->envp)
        return -ENOMEM;
    for (char *line = p->tracer, *nl; line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        p->argv[k++] = line;
    }
    if ((rc = hp_plan_set(p, &p->host, p->argv[0])) < 0)
        return rc;
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
        if (!hp_drop_from_env(envp[i]))
            p->envp[k++] = envp[i];
    }
    p->envp[k] = NULL;
    hp_debug("hpcbox-preload: %s is statically linked: exec under %s", cur, p->host);
    return 0;
}

/* The program's canonical guest path (p->exe, for /proc/self/exe) and host path (p->prog) into the
 * emptied plan text, and its stat (followed): 0 or -errno. An absolute path goes through the
 * directory cache (a shell runs most programs from the same few directories): its last name then
 * costs one lstat, which is the stat when it is no symlink; else one walk. */
static int resolve_program(struct plan *p, const char *cur, struct stat *st)
{
    const struct hp_config *c = hp_conf();
    char *room = hp_plan_room(p);
    int rc;

    /* the text is empty: room for three paths, the third the cache's scratch (PLAN_TEXT) */
    if (cur[0] == '/' && hp_dircache_canonical(c, cur, room, room + 2 * PATH_MAX) == 0) {
        hp_plan_keep(p, &p->exe);
        if (gp_map_canonical(&c->ctx, p->exe, hp_plan_room(p), PATH_MAX) == 0) {
            hp_plan_keep(p, &p->prog);
            if (syscall(SYS_newfstatat, AT_FDCWD, p->prog, st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st->st_mode))
                return 0;
        }
        hp_plan_reset(p); /* a symlink (its target is a guest path), or an error: the walk says */
        room = hp_plan_room(p);
    }
    rc = hp_canonical(AT_FDCWD, cur, HP_FOLLOW, room);
    if (rc == 0) {
        hp_plan_keep(p, &p->exe);
        rc = gp_map_canonical(&c->ctx, p->exe, hp_plan_room(p), PATH_MAX);
        if (rc == 0)
            hp_plan_keep(p, &p->prog);
    }
    if (rc == -EXDEV) { /* relative to a cwd outside the guest: as the kernel sees it */
        hp_plan_reset(p);
        rc = hp_plan_set(p, &p->exe, cur);
        if (rc == 0)
            rc = hp_plan_set(p, &p->prog, cur);
    }
    if (rc < 0)
        return rc;
    return syscall(SYS_newfstatat, AT_FDCWD, p->prog, st, 0) < 0 ? -errno : 0;
}

/* What kind of program the host file p->prog (stat st) is, its PT_INTERP into the plan's next room
 * ("" without one): the last program's when it is the same file (progcache.c). */
static int classify(struct plan *p, const struct stat *st)
{
    char *room = hp_plan_room(p);
    int kind;

    if (hp_known_program(st, room, PATH_MAX))
        return HPCBOX_EXEC_DYNAMIC;
    kind = hpcbox_preload_classify(p->prog, room, PATH_MAX);
    if (kind == HPCBOX_EXEC_DYNAMIC)
        hp_remember_program(st, room);
    return kind;
}

/* Work out what to execute for the guest `path`; 0 or -errno. */
int hp_plan_exec(struct plan *p, const char *path, char *const argv[], char *const envp[])
{
    const char *cur = path, *user_libpath;
    int argc = hp_count(argv), level = 0, kind, rc;

    /* no memset of the whole plan (~50 KiB): every page touched is a page fault in a forked child */
    hp_plan_reset(p);
    p->npre = 0;
    p->skip = 0;
    p->known_loader = p->mask_hwcaps = p->mask_legacy = p->trace = false;
    p->hwcap_at = -1;
    p->argv = p->envp = NULL;
    p->libpath = p->env_exe = p->env_argv0 = p->env_preload = p->env_comm = p->tracer = NULL;
    {
        /* not snprintf: its stack frame costs a forked child several page faults (~2 us each) */
        const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
        size_t n = strnlen(name, sizeof(p->comm) - 1);

        memcpy(p->comm, name, n);
        p->comm[n] = '\0';
    }
    if (hp_conf()->exe[0] && hp_is_proc_exe(path))
        cur = hp_conf()->exe; /* the program again, not its loader (procself.c) */
    for (;;) {
        struct stat st;

        hp_plan_reset(p); /* this level's paths (the last level's are not used again) */
        rc = resolve_program(p, cur, &st);
        if (rc < 0)
            return rc;
        if (!S_ISREG(st.st_mode) || syscall(SYS_faccessat, AT_FDCWD, p->prog, X_OK) < 0)
            return -EACCES; /* as the kernel: only a regular file runs */
        kind = classify(p, &st);
        if (kind < 0)
            return kind;
        hp_plan_keep(p, &p->interp);
        if (kind == HPCBOX_EXEC_UNKNOWN)
            return -ENOEXEC;
        if (kind == HPCBOX_EXEC_STATIC && level == 0 && hp_is_loader(p))
            return hp_plan_loader(p, argv, envp);
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
    p->musl = false;
    for (const char *q = p->interp; *q && !p->musl; q++) /* strstr's first call in a forked child: */
        p->musl = strncmp(q, "ld-musl", 7) == 0;         /* a symbol lookup and 3 page faults */
    {
        /* into the plan's text: no path buffer in this frame (a page fault per page) */
        char *room = hp_plan_room(p);
        const char *h = room;

        p->known_loader = hp_known_loader(p->interp, room, PATH_MAX, &p->mask_hwcaps, &p->mask_legacy);
        if (!p->known_loader && !(h = hp_path(AT_FDCWD, p->interp, HP_FOLLOW | HP_NOFAST, room)))
            return -errno;
        if (h == room)
            hp_plan_keep(p, &p->host);
        else if ((rc = hp_plan_set(p, &p->host, h)) < 0)
            return rc;
    }
    user_libpath = hp_env_value(envp, "LD_LIBRARY_PATH");
    if (user_libpath && *user_libpath) /* the engine looked in the container's directories, not these */
        p->mask_hwcaps = p->mask_legacy = false;
    if (p->mask_legacy && (hp_env_value(envp, HP_HWCAP_MASK) || hp_env_value(envp, "GLIBC_TUNABLES")))
        p->mask_legacy = false; /* the program's own mask, or tunables that may set it: theirs */
    rc = hp_libpath_for(p, user_libpath);
    if (rc < 0)
        return rc;
    p->trace = hp_env_value(envp, "LD_TRACE_LOADED_OBJECTS") != NULL;
    {
        int total = p->npre + (argc - p->skip);
        const char *argv0 = total > 0 ? arg_at(p, argv, 0) : cur;
        int k;

        rc = hp_build_env(p, envp, argv0);
        if (rc < 0)
            return rc;
        k = hp_loader_argv(p, total, argv0);
        if (k < 0)
            return k;
        p->argv[k++] = p->prog;
        for (int i = 1; i < total; i++)
            p->argv[k++] = (char *)arg_at(p, argv, i);
        p->argv[k] = NULL;
    }
    hp_debug("hpcbox-preload: exec %s (%s) with %s", cur, p->prog, p->host);
    return 0;
}


/* hpcbox-ptrace: run a program with a directory as its "/" under ptrace, without privileges.
 *
 *   hpcbox-ptrace --rootfs DIR [--bind GUEST HOST]... [--bind-ro GUEST HOST]... [--cwd DIR]
 *                 [--uid N] [--gid N] [--owners FILE] [--hostname NAME] [--readonly] [--no-seccomp]
 *                 [--no-landlock] [--trace-dirfd] [--exact-owners] [--stats] -- PROGRAM [ARGS...]
 *   hpcbox-ptrace --probe
 *   hpcbox-ptrace --version
 *
 * The environment is passed to the program as it is. Exit status: the program's, 128+n when a
 * signal n killed it, 125 when the tracer failed, 126/127 when the program cannot be run / found. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include "hpcbox_version.h" /* csrc/common/: --version */

#define EXIT_ENGINE 125
#define MAX_BINDS 256

struct options {
    const char *rootfs;
    const char *cwd;
    const char *bind_guest[MAX_BINDS];
    const char *bind_host[MAX_BINDS];
    bool bind_ro[MAX_BINDS];
    int n_binds;
    bool have_uid, have_gid, probe;
    struct tracer_config cfg;
    char **argv;
};

static int usage(const char *problem)
{
    fprintf(stderr,
            "hpcbox-ptrace: %s\n"
            "usage: hpcbox-ptrace --rootfs DIR [--bind GUEST HOST]... [--bind-ro GUEST HOST]... [--cwd DIR]\n"
            "                     [--uid N] [--gid N] [--owners FILE] [--hostname NAME] [--readonly] [--no-seccomp]\n"
            "                     [--no-landlock] [--trace-dirfd] [--exact-owners] [--stats] -- PROGRAM [ARGS...]\n"
            "       hpcbox-ptrace --probe | --version\n", problem);
    return EXIT_ENGINE;
}

static int parse_id(const char *text, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno || *end || end == text || v >= 0xffffffffUL)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

static int parse(int argc, char **argv, struct options *o)
{
    int i;

    o->cfg.seccomp = true;
    o->cfg.landlock = true;
    o->cwd = "/";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int left = argc - i - 1;
        unsigned id;

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--rootfs") == 0 && left >= 1) {
            o->rootfs = argv[++i];
        } else if ((strcmp(a, "--bind") == 0 || strcmp(a, "--bind-ro") == 0) && left >= 2) {
            if (o->n_binds == MAX_BINDS)
                return usage("too many --bind options");
            o->bind_ro[o->n_binds] = a[6] == '-';
            o->bind_guest[o->n_binds] = argv[++i];
            o->bind_host[o->n_binds++] = argv[++i];
        } else if (strcmp(a, "--cwd") == 0 && left >= 1) {
            o->cwd = argv[++i];
        } else if ((strcmp(a, "--uid") == 0 || strcmp(a, "--gid") == 0) && left >= 1) {
            if (parse_id(argv[++i], &id) < 0)
                return usage("--uid/--gid take a number below 4294967295");
            if (a[2] == 'u') {
                o->cfg.uid = id;
                o->have_uid = true;
            } else {
                o->cfg.gid = id;
                o->have_gid = true;
            }
        } else if (strcmp(a, "--owners") == 0 && left >= 1) {
            o->cfg.owners = argv[++i];
        } else if (strcmp(a, "--hostname") == 0 && left >= 1) {
            o->cfg.hostname = argv[++i];
        } else if (strcmp(a, "--readonly") == 0) {
            o->cfg.readonly_root = true;
        } else if (strcmp(a, "--no-seccomp") == 0) {
            o->cfg.seccomp = false;
        } else if (strcmp(a, "--no-landlock") == 0) {
            o->cfg.landlock = false;
        } else if (strcmp(a, "--trace-dirfd") == 0) {
            o->cfg.trace_dirfd = true;
        } else if (strcmp(a, "--exact-owners") == 0) {
            o->cfg.exact_owners = true;
        } else if (strcmp(a, "--stats") == 0) {
            o->cfg.stats = true;
        } else if (strcmp(a, "--probe") == 0) {
            o->probe = true;
        } else {
            fprintf(stderr, "hpcbox-ptrace: unknown option or missing value: %s\n", a);
            return usage("see the usage");
        }
    }
    if (o->probe)
        return 0;
    if (!o->rootfs)
        return usage("--rootfs is required");
    if (i >= argc)
        return usage("no program given after --");
    if (o->cwd[0] != '/')
        return usage("--cwd must be an absolute guest path");
    o->argv = argv + i;
    if (!o->have_uid)
        o->cfg.uid = getuid();
    if (!o->have_gid)
        o->cfg.gid = getgid();
    o->cfg.emulate_ids = o->cfg.uid != getuid() || o->cfg.gid != getgid();
    return 0;
}

static void print_stats(const struct tracer *t)
{
    unsigned long traced = 0;

    for (unsigned nr = 0; nr < SC_MAX_NR; nr++)
        traced += t->stops_by_sc[nr];
    fprintf(stderr, "hpcbox-ptrace: %lu stops, %lu of them syscall entries\n", t->stops_total, traced);
    for (unsigned nr = 0; nr < SC_MAX_NR; nr++)
        if (t->stops_by_sc[nr])
            fprintf(stderr, "hpcbox-ptrace:   %-18s %lu\n", SYSCALLS[t->by_nr[nr]].name, t->stops_by_sc[nr]);
}

int main(int argc, char **argv)
{
    static struct tracer t; /* ~20 KiB: off the stack */
    struct options o;
    char host_cwd[PATH_MAX];
    pid_t parent = getppid();
    int rc;

    if (hpcbox_version_asked(argc, argv))
        return hpcbox_version_print("hpcbox-ptrace");
    memset(&o, 0, sizeof(o));
    rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (o.probe) {
        const char *step = "";
        bool seccomp = false;

        rc = tracer_probe(&step, &seccomp);
        if (rc < 0) {
            fprintf(stderr, "hpcbox-ptrace: probe failed at %s: %s\n", step, strerror(-rc));
            return EXIT_ENGINE;
        }
        puts(seccomp ? "seccomp" : "no-seccomp");
        return 0;
    }
    /* when whoever started us dies, so do we (and with PTRACE_O_EXITKILL every tracee) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent) {
        fprintf(stderr, "hpcbox-ptrace: the caller is gone\n");
        return EXIT_ENGINE;
    }
    rc = tracer_init(&t, &o.cfg, o.rootfs);
    if (rc < 0) {
        fprintf(stderr, "hpcbox-ptrace: rootfs %s: %s; give an existing directory\n", o.rootfs, strerror(-rc));
        return EXIT_ENGINE;
    }
    for (int i = 0; i < o.n_binds; i++) {
        rc = tracer_add_binding(&t, o.bind_guest[i], o.bind_host[i], o.bind_ro[i]);
        if (rc < 0) {
            fprintf(stderr, "hpcbox-ptrace: binding %s -> %s: %s; the host path must exist and the guest "
                    "path be absolute, not /\n", o.bind_guest[i], o.bind_host[i], strerror(-rc));
            tracer_destroy(&t);
            return EXIT_ENGINE;
        }
    }
    rc = gp_to_host(&t.gp, o.cwd, GP_FOLLOW_LAST, host_cwd, sizeof(host_cwd));
    if (rc < 0) {
        fprintf(stderr, "hpcbox-ptrace: working directory %s: %s\n", o.cwd, strerror(-rc));
        tracer_destroy(&t);
        return EXIT_ENGINE;
    }
    rc = tracer_run(&t, host_cwd, o.argv);
    if (o.cfg.stats)
        print_stats(&t);
    tracer_destroy(&t);
    return rc;
}

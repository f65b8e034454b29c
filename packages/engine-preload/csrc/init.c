/* What the library does once when a process starts (its constructor): the container's time zone
 * files for libc's internal opens (the container's first process only), the process name and, for
 * glibc, argv[0] and /proc/self/cmdline put back (procself.c), the configuration hidden from the
 * program (environ here, /proc/PID/environ in environ.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compat.h"
#include "preload.h"

#undef fstatat
#undef stat
#undef readlinkat
#undef realpath

/* /etc/localtime and the zoneinfo files are opened by libc's own internal calls, which this
 * library does not see: libc is pointed at the container's copies through the variables it reads,
 * where the container has them and the variable is not set (TZ=":FILE", TZDIR; host paths). Once,
 * in the container's first process: inherited from there. Not GCONV_PATH: with it set, glibc
 * parses the module lists instead of its cache in every process that sets a locale (fork+exec
 * of `ls` 2x slower). */
static const char *host_of(const char *guest, bool dir, char *buf)
{
    struct stat st;
    const char *h = hp_path(AT_FDCWD, guest, HP_FOLLOW | HP_NOFAST, buf);

    if (!h || hp_sys_fstatat(AT_FDCWD, h, &st, 0) < 0)
        return NULL;
    return (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) ? h : NULL;
}

static void container_libc_files(void)
{
    char buf[PATH_MAX], tz[PATH_MAX + 1];
    const char *h;

    if (!getenv("TZ") && (h = host_of("/etc/localtime", false, buf))) {
        snprintf(tz, sizeof(tz), ":%s", h);
        setenv("TZ", tz, 0);
    }
    if (!getenv("TZDIR") && (h = host_of("/usr/share/zoneinfo", true, buf)))
        setenv("TZDIR", h, 0);
}

/* The configuration stays out of the program's sight (`env`, environ, /proc/PID/environ): every
 * HPCBOX_PRELOAD_* variable, and the loader's mask that exec added (plan.c), leaves environ once
 * read, in one pass and in place as unsetenv moves entries (unsetenv of each would scan the whole
 * environment once per variable; the constructor runs alone); hp_fix_proc_self hides the strings
 * /proc/PID/environ shows, and exec puts the configuration back from the copies in `keep`. The
 * number of entries taken out. */
static int unset_configuration(void)
{
    extern char **environ;
    bool hwcap = getenv(HP_ENV_HWCAP) != NULL;
    char **out = environ;
    int n = 0;

    for (char **e = environ; e && *e; e++) {
        if (hp_env_hidden(*e, hwcap))
            n++;
        else
            *out++ = *e;
    }
    if (out)
        *out = NULL;
    return n;
}

/* The work common to both constructors: the memory map's ranges read off the stack (glibc; first,
 * before anything allocates: the break is one of them), or else from /proc/self/stat when needed;
 * one prctl sets argv[0]'s place and the environment. */
static void start(int argc, char **argv, char **envp, const char *argv0)
{
    struct hp_mm m;
    bool have = hp_mm_from_stack(argc, argv, envp, &m) == 0;
    const struct hp_config *c = hp_conf();
    const char *comm = getenv(HP_ENV_COMM); /* (environ loses it below; the string stays) */
    int hidden;

    if (c && c->first)
        container_libc_files();
    hidden = unset_configuration(); /* (argv0 and the strings stay where they are) */
    hp_fix_proc_self(argc, argv, argv0, have ? &m : NULL, hidden > 0);
    /* last: once another process reads the program's name in /proc/PID/comm, it finds the rest
     * (cmdline, the code range its /proc/PID/exe is read from: procs.c) set too */
    hp_set_comm(comm);
}

#ifdef __GLIBC__
/* glibc passes (argc, argv, envp) to constructors; a loader without --argv0 leaves the host path
 * of the program in argv[0], which is put right here. */
__attribute__((constructor(101))) static void hp_init(int argc, char **argv, char **envp)
{
    const char *argv0 = getenv(HP_ENV_ARGV0);

    start(argc, argv, envp, argv0); /* (hp_fix_proc_self leaves argv alone without argv0 or argv[0]) */
    if (argv0 && argc > 0 && argv) {
        program_invocation_name = argv[0];
        program_invocation_short_name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    }
}
#else
__attribute__((constructor(101))) static void hp_init(void)
{
    start(0, NULL, NULL, NULL);
}
#endif

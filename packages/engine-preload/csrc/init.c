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
 * HPCBOX_PRELOAD_* variable is removed once read; exec puts the configuration back from the copies
 * in `keep`. */
static void hide_configuration(void)
{
    extern char **environ;
    char names[32][64];
    int n = 0;

    /* the names first: unsetenv moves the entries (and a program's own copy of `environ` may
     * differ from the one libc changes) */
    for (char **e = environ; e && *e && n < 32; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : 0;

        if (len && len < sizeof(names[0]) && strncmp(*e, HP_ENV_PREFIX, sizeof(HP_ENV_PREFIX) - 1) == 0) {
            memcpy(names[n], *e, len);
            names[n++][len] = '\0';
        }
    }
    if (n > 0)
        hp_hide_proc_environ();
    for (int i = 0; i < n; i++)
        unsetenv(names[i]);
}

#ifdef __GLIBC__
/* glibc passes (argc, argv, envp) to constructors; a loader without --argv0 leaves the host path
 * of the program in argv[0], which is put right here. */
__attribute__((constructor(101))) static void hp_init(int argc, char **argv, char **envp)
{
    const char *argv0 = getenv(HP_ENV_ARGV0);
    const struct hp_config *c;

    (void)envp;
    c = hp_conf();
    if (c && c->first)
        container_libc_files();
    if (c)
        hp_register_exe(c); /* for the others' /proc/PID/exe (procs.c) */
    hp_set_comm(getenv(HP_ENV_COMM));
    if (argv0 && argc > 0 && argv) {
        hp_fix_argv(argc, argv, argv0);
        program_invocation_name = argv[0];
        program_invocation_short_name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    }
    hide_configuration();
}
#else
__attribute__((constructor(101))) static void hp_init(void)
{
    const struct hp_config *c = hp_conf();

    if (c && c->first)
        container_libc_files();
    if (c)
        hp_register_exe(c); /* for the others' /proc/PID/exe (procs.c) */
    hp_set_comm(getenv(HP_ENV_COMM));
    hide_configuration();
}
#endif

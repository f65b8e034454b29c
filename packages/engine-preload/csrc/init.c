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
 * HPCBOX_PRELOAD_* variable is removed once read (after hp_fix_proc_self has hidden the strings
 * /proc/PID/environ shows); exec puts the configuration back from the copies in `keep`. The names
 * first: unsetenv moves the entries (and a program's own copy of `environ` may differ from the one
 * libc changes). */
struct config_names {
    int n;
    char name[32][64];
};

static void find_configuration(struct config_names *found)
{
    extern char **environ;

    found->n = 0;
    for (char **e = environ; e && *e && found->n < 32; e++) {
        const char *eq;
        size_t len;

        if ((*e)[0] != HP_ENV_PREFIX[0] || strncmp(*e, HP_ENV_PREFIX, sizeof(HP_ENV_PREFIX) - 1) != 0)
            continue; /* (the first letter first: every process looks at each entry here) */
        eq = strchr(*e, '=');
        len = eq ? (size_t)(eq - *e) : 0;
        if (len && len < sizeof(found->name[0])) {
            memcpy(found->name[found->n], *e, len);
            found->name[found->n++][len] = '\0';
        }
    }
}

static void unset_configuration(const struct config_names *found)
{
    if (getenv(HP_ENV_HWCAP)) /* the loader's mask, added by the exec that started this program */
        unsetenv(HP_HWCAP_MASK);
    for (int i = 0; i < found->n; i++)
        unsetenv(found->name[i]);
}

/* The work common to both constructors: the memory map's ranges read off the stack (glibc; first,
 * before anything allocates: the break is one of them), or else from /proc/self/stat when needed;
 * one prctl sets argv[0]'s place and the environment. */
static void start(int argc, char **argv, char **envp, const char *argv0)
{
    struct hp_mm m;
    bool have = hp_mm_from_stack(argc, argv, envp, &m) == 0;
    const struct hp_config *c = hp_conf();
    struct config_names found;

    if (c && c->first)
        container_libc_files();
    if (c)
        hp_register_exe(c, have ? m.exec_name : NULL); /* for the others' /proc/PID/exe (procs.c) */
    hp_set_comm(getenv(HP_ENV_COMM));
    find_configuration(&found);
    hp_fix_proc_self(argc, argv, argv0, have ? &m : NULL, found.n > 0);
    unset_configuration(&found);
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

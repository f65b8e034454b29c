/* `--version` of hpcbox's helper programs (hpcbox-userns, hpcbox-ptrace, hpcbox-preload-exec), one
 * line as `hpcbox info` and the packages' tests read it: "NAME VERSION (ARCHITECTURE)".
 *
 * VERSION is the package's (the build hooks pass -DHPCBOX_VERSION, hpcbox_cbuild.py); ARCHITECTURE
 * the one the program was built for, named as `uname -m` names it. Shared by the three C packages:
 * each sdist carries a copy in csrc/common/ (force-include in its pyproject.toml), so that each
 * builds alone. Header only: nothing to link. */
#ifndef HPCBOX_VERSION_H
#define HPCBOX_VERSION_H

#include <stdio.h>
#include <string.h>

#ifndef HPCBOX_VERSION
#define HPCBOX_VERSION "unknown"
#endif
#if defined(__x86_64__)
#define HPCBOX_ARCH "x86_64"
#elif defined(__aarch64__)
#define HPCBOX_ARCH "aarch64"
#else
#define HPCBOX_ARCH "another architecture"
#endif

/* Whether the command line is `PROGRAM --version` (that argument alone). */
static inline int hpcbox_version_asked(int argc, char **argv)
{
    return argc == 2 && strcmp(argv[1], "--version") == 0;
}

/* Print the version line of `program` on stdout: the exit status, 0, or 1 when it cannot be written. */
static inline int hpcbox_version_print(const char *program)
{
    if (printf("%s %s (%s)\n", program, HPCBOX_VERSION, HPCBOX_ARCH) < 0 || fflush(stdout) != 0)
        return 1;
    return 0;
}

#endif

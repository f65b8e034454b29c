/* Forced include (-include compat.h) for the cffi module's C files (abi.c and the shared
 * csrc/guestpath/guestpath.c, compiled in unchanged).
 *
 * glibc 2.33 turned stat/fstatat into real functions with a new symbol version (stat@GLIBC_2.33);
 * a module built on a newer glibc would not load on an older one (Debian 11: 2.31, RHEL 8: 2.28,
 * the manylinux2014 baseline: 2.17). The core's calls go straight to the kernel instead: on x86_64
 * and aarch64, glibc's struct stat is the kernel's, and newfstatat has the fstatat contract
 * (-1 and errno). System headers first, so that the function-like macros below only rename calls.
 */
#ifndef HPCBOX_PTRACE_COMPAT_H
#define HPCBOX_PTRACE_COMPAT_H

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__GLIBC__) && defined(SYS_newfstatat)
static inline int hp_compat_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}
#define fstatat(d, p, s, f) hp_compat_fstatat(d, p, s, f)
#define stat(p, s) hp_compat_fstatat(AT_FDCWD, p, s, 0)
#define lstat(p, s) hp_compat_fstatat(AT_FDCWD, p, s, AT_SYMLINK_NOFOLLOW)
#endif

#endif

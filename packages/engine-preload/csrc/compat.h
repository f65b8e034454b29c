/* Forced include (-include compat.h) for csrc/guestpath/guestpath.c, compiled in unchanged.
 *
 * Inside the preload library, the core's own lstat/readlink/realpath calls must reach the kernel,
 * not this library's wrappers of the same names (which would translate them again), and must not
 * bind to glibc symbols newer than 2.31 (fstatat@GLIBC_2.33). System headers first, so that the
 * function-like macros below only rename calls.
 */
#ifndef HPCBOX_PRELOAD_COMPAT_H
#define HPCBOX_PRELOAD_COMPAT_H

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* glibc 2.34 moved dlsym into libc under a new version; bind the one every glibc of the
 * architecture has (in libdl.so.2 before 2.34, kept in libc for compatibility after). */
#include <dlfcn.h>
#ifdef __GLIBC__
/* weak: glibc < 2.34 has it in libdl.so.2, which the library does not load (hp_next_symbol) */
#pragma weak dlsym
#endif
#if defined(__GLIBC__) && defined(__x86_64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#elif defined(__GLIBC__) && defined(__aarch64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.17");
#endif

int hp_sys_fstatat(int dirfd, const char *path, struct stat *st, int flags);
int hp_sys_stat(const char *path, struct stat *st);
ssize_t hp_sys_readlinkat(int dirfd, const char *path, char *buf, size_t size);
char *hp_sys_realpath(const char *path, char *resolved);
/* While on, hp_sys_realpath takes absolute paths as already canonical (copies them) and hp_sys_stat
 * answers "a directory": set by the configuration's setup only, for host paths an earlier process
 * of the container resolved (the rootfs, the bindings). */
void hp_sys_trust_canonical(int on);

#define fstatat(d, p, s, f) hp_sys_fstatat(d, p, s, f)
#define stat(p, s) hp_sys_stat(p, s)
#define readlinkat(d, p, b, n) hp_sys_readlinkat(d, p, b, n)
#define realpath(p, r) hp_sys_realpath(p, r)

#endif

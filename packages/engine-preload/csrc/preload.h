/* Internal interface of libhpcbox-preload: configuration, real functions, path translation.
 *
 * The library is injected with LD_PRELOAD into every process of a container. Each wrapper turns
 * the guest path it is given into the host path the kernel needs (hp_path, resolve.c), calls the
 * real libc function found with dlsym(RTLD_NEXT) (REAL, next.c), and maps paths that come back to
 * the guest (hp_guest). The configuration is read once from the environment (config.c) into one
 * read-only struct.
 *
 * Errors (README "Sources"): the exported wrappers keep libc's convention of the function
 * they stand in for (-1 or NULL with errno, posix_spawn's error number, ...), and so do the few
 * internal functions that are a wrapper's other half (hp_path, hp_execve, hp_stat, hp_mknod: a
 * wrapper returns what they return). Every other function returns 0 (or a count, a length) on
 * success and -errno on failure; a bool answers a question and is never a failure.
 */
#ifndef HPCBOX_PRELOAD_INTERNAL_H
#define HPCBOX_PRELOAD_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "guestpath.h"
#include "procmagic.h"
#include "hpcbox_preload.h"

/* Exported wrappers: everything else is hidden (-fvisibility=hidden). */
#define WRAP HPCBOX_EXPORT

/* The environment variables of the configuration (README: "Environment"). */
#define HP_ENV_ROOT "HPCBOX_PRELOAD_ROOT"
#define HP_ENV_BINDS "HPCBOX_PRELOAD_BINDS"
#define HP_ENV_LIB_GLIBC "HPCBOX_PRELOAD_LIB"
#define HP_ENV_LIB_MUSL "HPCBOX_PRELOAD_LIB_MUSL"
#define HP_ENV_LIBPATH "HPCBOX_PRELOAD_LIBPATH"
#define HP_ENV_LIBPATH_MUSL "HPCBOX_PRELOAD_LIBPATH_MUSL"
#define HP_ENV_UID "HPCBOX_PRELOAD_UID"
#define HP_ENV_GID "HPCBOX_PRELOAD_GID"
#define HP_ENV_HOSTNAME "HPCBOX_PRELOAD_HOSTNAME"
#define HP_ENV_MODE "HPCBOX_PRELOAD_MODE"
#define HP_ENV_LOADERS "HPCBOX_PRELOAD_LOADERS" /* lines guest=host of the loaders, resolved */
#define HP_ENV_RO "HPCBOX_PRELOAD_RO" /* guest prefixes mounted read-only ("/" = the rootfs) */
#define HP_ENV_EXE "HPCBOX_PRELOAD_EXE"     /* per exec: the program's guest path */
#define HP_ENV_ARGV0 "HPCBOX_PRELOAD_ARGV0" /* per exec: argv[0] (glibc loaders without --argv0) */
#define HP_ENV_COMM "HPCBOX_PRELOAD_COMM"   /* per exec: the process name the kernel would give */
#define HP_ENV_CREDS "HPCBOX_PRELOAD_CREDS" /* per exec: emulated ids changed by the parent */
/* per exec: "1" when the library added LD_HWCAP_MASK (below) for the loader: taken out again */
#define HP_ENV_HWCAP "HPCBOX_PRELOAD_HWCAP"
#define HP_HWCAP_MASK "LD_HWCAP_MASK"
#define HP_ENV_PTRACE "HPCBOX_PRELOAD_PTRACE" /* lines: the ptrace tracer's command line prefix */
#define HP_ENV_OWNERS "HPCBOX_PRELOAD_OWNERS" /* the container's ownership record (owners.h) */
/* "1" for the launcher only (not kept for execs): restrict the container's writes with Landlock */
#define HP_ENV_LANDLOCK "HPCBOX_PRELOAD_LANDLOCK"
#define HP_ENV_PREFIX "HPCBOX_PRELOAD_"
#define HP_ENV_DEBUG "HPCBOX_DEBUG"
/* Set by the library for the processes it starts: a hash of the ROOT and BINDS values, which it
 * rewrote with canonical host paths; when it matches, they are used without realpath again. */
#define HP_ENV_CANON "HPCBOX_PRELOAD_CANONICAL"

/* Variables copied into the environment of every exec (also when the program cleared it). */
#define HP_N_KEEP 15
extern const char *const hp_keep_names[HP_N_KEEP];

struct hp_config {
    bool active;                    /* a rootfs is configured and valid */
    struct gp_context ctx;          /* root and bindings (the cwd in it stays "/") */
    char *keep[HP_N_KEEP];          /* "NAME=value" copies of the configuration variables */
    char *lib_glibc, *lib_musl;     /* host paths of the two builds of this library */
    char *libpath, *libpath_musl;   /* host library paths for the container's loaders */
    const char *exe;                /* guest path of this process's program ("" unknown); on the
                                     * heap: as an array here, a page more of .bss written */
    bool fake_ids;                  /* report uid/gid below instead of the real ones */
    uid_t uid;
    gid_t gid;
    uid_t real_uid;                 /* the caller's ids (shown as uid/gid under fake_ids) */
    gid_t real_gid;
    char *owners;                   /* HP_ENV_OWNERS: host path of the ownership record, or NULL */
    char hostname[65];              /* "" = the host's */
    int mode;                       /* 1..4: F1..F4 */
    bool kernel_fs[3];              /* /proc, /dev, /sys bound to the host's same paths */
    bool first;                     /* the container's first process (no canonical tag yet) */
    size_t n_ro;                    /* host prefixes (root or a binding's) that are read-only */
    char **ro;
    bool *ro_flag;                  /* parallel to ro: every prefix, with whether it is read-only */
    char **bound_names;             /* every component of the bindings' guest paths */
    size_t n_bound_names;
    char *ptrace;                   /* HP_ENV_PTRACE: the tracer's command line prefix, or NULL */
    char *loaders;                  /* HP_ENV_LOADERS: a hint, checked by the exec that uses it */
};

/* The configuration, initialised on first use (or by the constructor). NULL when inactive. */
const struct hp_config *hp_conf(void);
/* The fields of the process's memory map that PR_SET_MM_MAP sets (all at once), as this process
 * has them (procself.c): from the stack exec laid out (no /proc read) or from /proc/self/stat.
 * arg_start 0: not known (the stack does not tell where the loader's strings begin); arg_floor:
 * the lowest address of the argument area known to be there. The code range is the program's
 * (its first object's executable segment), not the loader's: the others' /proc/PID/exe (procs.c). */
struct hp_mm {
    unsigned long long start_code, end_code, start_data, end_data, start_brk, start_stack;
    unsigned long long arg_start, arg_floor, arg_end, env_start, env_end;
};
int hp_mm_from_stack(int argc, char **argv, char **envp, struct hp_mm *m);
int hp_mm_from_stat(struct hp_mm *m);
/* environ.c: the environment strings of m's range without the HPCBOX_PRELOAD_* variables, in
 * memory from malloc of which `used` bytes hold them; NULL when none is there (or no memory). For
 * /proc/PID/environ (hp_fix_proc_self). */
char *hp_environ_copy(const struct hp_mm *m, size_t *used);
/* Whether the environment entry is one the program must not see: the configuration, or (hwcap:
 * the mark HP_ENV_HWCAP is there) the loader's LD_HWCAP_MASK that exec added. */
bool hp_env_hidden(const char *entry, bool hwcap);

/* environ.c: the environment's HPCBOX_* entries gathered in one pass, and a lookup among them
 * (getenv for other names): setting up makes ~40 lookups, each of which getenv would make over
 * the whole environment (~20k instructions in every process). */
#define HP_ENV_FAMILY "HPCBOX_"
struct hp_env_index {
    int n;
    const char *entry[64];
    size_t name_len[64]; /* up to the '=': most names differ in length, so few are compared */
};
void hp_env_index(struct hp_env_index *ix);
const char *hp_env_lookup(const struct hp_env_index *ix, const char *name);

/* The HPCBOX_DEBUG level (say.c; set by the configuration). */
extern int hp_debug_level;
/* One line on stderr when HPCBOX_DEBUG is set (level >= 1). */
void hp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line on stderr, always. */
void hp_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* dlsym(RTLD_NEXT, name), also where libc has no dlsym (glibc < 2.34 without libdl): next.c. */
void *hp_next_symbol(const char *name);

/* A static the library writes, placed in .data rather than .bss: the loader maps .data with the
 * file, and a .bss that spills past the last page of it needs an anonymous mapping of its own,
 * one more mmap (and VMA) in every process. What stays in .bss must fit in that page's tail
 * (tests/test_library.py checks). */
#define HP_DATA __attribute__((section(".data")))

/* The next definition of a libc function (RTLD_NEXT), looked up once and cached in *slot. */
void *hp_next(const char *name, void **slot);
#define REAL(name)                                                                                 \
    ({                                                                                             \
        static void *hp_slot_ HP_DATA;                                                             \
        (__typeof__(&name))hp_next(#name, &hp_slot_);                                              \
    })
/* For symbols that have no prototype in the headers (__xstat and friends). */
#define REAL_T(type, name)                                                                         \
    ({                                                                                             \
        static void *hp_slot_ HP_DATA;                                                             \
        (type)hp_next(#name, &hp_slot_);                                                           \
    })

/* The host's kernel file systems ("/proc", "/dev", "/sys"), in the order of hp_config.kernel_fs. */
extern const char *const hp_kernel_fs[3];

/* hp_path flags */
#define HP_FOLLOW 0x1  /* follow a final symlink (stat, open without O_NOFOLLOW) */
#define HP_NOFAST 0x2  /* no pass-through for a plain name relative to a real directory */
#define HP_WRITE 0x4   /* the call changes the file system: EROFS under a read-only binding */
#define HP_PARENT 0x8  /* the final name is created, removed or renamed: kept as written (GP_PARENT) */
#define HP_RMDIR 0x10  /* HP_PARENT for rmdir: a mount point cannot be removed (GP_NO_MOUNT) */
#define HP_UNLINK 0x20 /* HP_PARENT for unlink */
#define HP_RENAME 0x40 /* HP_PARENT for remove: a mount point cannot be removed (rename: hp_check_move) */
#define HP_MOVE 0x80   /* a name of rename or link: translated as for HP_WRITE, EROFS left to hp_check_move */
#define HP_EXISTS 0x100 /* with HP_FOLLOW: the call only looks (stat, access) and its arguments are
                         * valid, so a missing final name is its answer (ENOENT) */

/* The host path to hand the kernel for (dirfd, path): buf, or path itself when it needs no
 * translation (inactive library, empty path, a plain name relative to a directory that is not a
 * symlink). NULL with errno set when the guest path cannot resolve (ENOENT, ELOOP, ...; EFAULT for NULL). */
const char *hp_path(int dirfd, const char *path, int flags, char *buf);

/* fstatat(2) by syscall, past every wrapper (sys.c; also declared for compat.h's users). */
struct stat;
int hp_sys_fstatat(int dirfd, const char *path, struct stat *st, int flags);

/* Whether the host path lies in a read-only root or binding (the longest prefix decides). */
bool hp_read_only_host(const struct hp_config *c, const char *host);

/* The directory cache (dircache.c): gp_to_host of the absolute guest path abs into buf (PATH_MAX)
 * through the last directory remembered; 0, 1 when the caller must walk the path itself, or
 * -ENOENT where HP_EXISTS asks and the final name is missing. */
int hp_dircache_to_host(const struct hp_config *c, const char *abs, int flags, char *buf);
/* The same for the canonical guest path of abs into canon (PATH_MAX): its directory's through the
 * cache, then its last name as given, not looked at (the caller checks that it is no symlink);
 * scratch: PATH_MAX bytes used meanwhile. 0, or 1 when the caller must walk the path itself. */
int hp_dircache_canonical(const struct hp_config *c, const char *abs, char *canon, char *scratch);

/* The last dynamically linked program planned for exec (progcache.c): whether the file of `st`
 * (its followed stat) is that one, with its PT_INTERP copied into interp (size bytes); and
 * remembering another. */
bool hp_known_program(const struct stat *st, char *interp, size_t size);
void hp_remember_program(const struct stat *st, const char *interp);

/* Forget the directories remembered by hp_path (after a call that removed or renamed a name). */
void hp_invalidate(void);

/* Whether `name` (relative) may go to the kernel unchanged against a real directory: a single
 * component, not "..", and no component of a binding's guest path (which may lie below). */
bool hp_plain_name(const struct hp_config *c, const char *name);

/* Like hp_path, for callers that want an absolute guest path resolved: the canonical guest path. */
int hp_canonical(int dirfd, const char *path, int flags, char *out);

/* rename (kind GP_MOVE_RENAME, renameat2's flags) and link (GP_MOVE_LINK; follow: HP_FOLLOW for
 * linkat's AT_SYMLINK_FOLLOW) across bindings, or of a binding's own guest path, as Linux orders the
 * errors (gp_check_move), a read-only binding's EROFS included (new_host: new's host path from
 * hp_path with HP_MOVE; flags: renameat2's, or linkat's for AT_EMPTY_PATH, whose descriptor's file
 * is then old): 0 (the kernel decides), GP_SAME (nothing to do: success) or -errno. */
int hp_check_move(int olddirfd, const char *old, int newdirfd, const char *new, const char *new_host, int kind,
                  int follow, unsigned flags);

/* Map a host path (as the kernel returns it) to the guest; unchanged when outside. */
void hp_guest(const char *host, char *out, size_t size);

/* Whether p is NULL, out of sight of the nonnull attributes of libc's prototypes (a program
 * may pass NULL where the kernel allows it, e.g. utimensat). */
bool hp_null(const void *p);

/* The guest cwd (canonical), from the real getcwd. 0 or -errno. */
int hp_guest_cwd(char *out, size_t size);

/* stat (follow) or lstat of a guest path on any libc: translated, then the system call itself
 * (glibc < 2.33 exports no stat/lstat to forward to). 0, or -1 with errno. For the walkers. */
struct stat;
int hp_stat(const char *path, struct stat *st, bool follow);

/* Emulated ids (identity.c): set up from the configuration's uid/gid and the parent's
 * HP_ENV_CREDS ("ruid euid suid rgid egid sgid groups..."); the current ones as that variable's
 * "NAME=value" for an exec (0, or -ENAMETOOLONG); the effective uid, -1 without emulation. */
void hp_creds_init(const char *spec, uid_t uid, gid_t gid);
int hp_creds_env(char *out, size_t size);
uid_t hp_fake_euid(void);

/* Ownership as the container shows it (identity.c, csrc/guestpath/owners.h): rewrite a stat
 * result; after a successful stat, nothing without emulated ids. */
struct stat;
struct statx;
void hp_show_stat(struct stat *st);
void hp_show_statx(struct statx *st);
/* Before removing or replacing host path `host` (dirfd-relative; no follow): whether its record
 * must go; then hp_forget_done() after the kernel removed it. */
bool hp_forget_prepare(int dirfd, const char *host, unsigned long long id[2]);
void hp_forget_done(const unsigned long long id[2]);
/* After the kernel's mknod answered rc (libc style: a wrapper returns what this returns): under
 * emulated root, a device node the kernel refused becomes an empty regular file recorded as that
 * device (as fakeroot does); for an emulated ordinary user the kernel's EPERM stands, as Linux
 * gives a user without CAP_MKNOD, and nothing is created. FIFOs, sockets and regular files are
 * the kernel's own. */
int hp_mknod(int rc, int dirfd, const char *host, mode_t mode, dev_t dev);

/* /proc/self (procself.c): whether path names this process's exe link (/proc/self/exe,
 * /proc/thread-self/exe, /proc/PID/exe); in the constructor, argv[0] put back as argv0 (NULL: left)
 * with /proc/self/cmdline made the program's argv, and /proc/self/environ without the configuration
 * (hide_env), from the memory map m (NULL, or one without what is needed: read here). */
bool hp_is_proc_exe(const char *path);
void hp_fix_proc_self(int argc, char **argv, const char *argv0, const struct hp_mm *m, bool hide_env);
/* Fields 3..count-1 of /proc/PID/stat (pid 0: this process's), numbered as in proc(5), into v
 * (the state letter reads as 0): 0, or -errno (-EIO: fewer fields). Raw system calls (procs.c). */
int hp_proc_stat(long pid, unsigned long long *v, int count);
/* v as 16 lowercase hex digits and a NUL, without stdio (procs.c). */
void hp_hex16(unsigned long long v, char out[17]);
/* /proc/PID/exe of the container's other processes (procs.c): the program of the process that
 * `path` ("/proc/PID/exe") names, whose kernel link is `kernel_link` (NULL: read here), as a guest
 * path into out: 0 when its code lies in a file of the container other than that link (a program
 * its loader runs), else -errno (the kernel's link holds). */
int hp_other_exe(const char *path, const char *kernel_link, char *out, size_t size);
/* The name /proc/self/comm and ps show: what the kernel names a process after the file given to
 * exec (the loader's name otherwise). */
void hp_set_comm(const char *name);

/* chroot(2) inside (chroot.c, config.c): make the directory at canonical guest path `guest` this
 * process's root, and its children's. 0 or -errno. */
int hp_chroot(const char *guest);

/* Execution (exec.c; planning: plan.c, loader.c, exec.h). */
int hp_execve(const char *path, char *const argv[], char *const envp[]);
int hp_execvpe(const char *file, char *const argv[], char *const envp[]);
/* The host path the engine resolved for the loader `guest` (PT_INTERP) into host: whether the
 * engine knows it, whether that loader may mask its glibc-hwcaps subdirectories (none there) and
 * whether it may run with LD_HWCAP_MASK=0 (no subdirectory of glibc < 2.37's older search there). */
bool hp_known_loader(const char *guest, char *host, size_t size, bool *mask_hwcaps, bool *mask_legacy);

#endif

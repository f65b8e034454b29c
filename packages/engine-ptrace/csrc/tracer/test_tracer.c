/* TAP tests of the tracer's pure pieces: the syscall table, the seccomp program, #! and ELF
 * parsing, and the credential rules of root emulation. Run by tests/test_tracer_tap.py.
 * Over 500 lines: one TAP program (one build, one plan) of many short independent cases. */
#define _GNU_SOURCE
#include "tracer.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_tests, n_failed;

static void ok(int cond, const char *what)
{
    n_tests++;
    if (!cond)
        n_failed++;
    printf("%sok %d - %s\n", cond ? "" : "not ", n_tests, what);
}

/* Every name of the table with this architecture's number from the C library's <sys/syscall.h>
 * (SC_NONE where it has none): run on x86_64 it checks that column, on aarch64 the other one. */
static const struct {
    const char *name;
    long nr;
} LIBC_NUMBERS[] = {
#ifdef SYS_open
    {"open", SYS_open},
#else
    {"open", SC_NONE},
#endif
#ifdef SYS_creat
    {"creat", SYS_creat},
#else
    {"creat", SC_NONE},
#endif
#ifdef SYS_openat
    {"openat", SYS_openat},
#else
    {"openat", SC_NONE},
#endif
#ifdef SYS_openat2
    {"openat2", SYS_openat2},
#else
    {"openat2", SC_NONE},
#endif
#ifdef SYS_stat
    {"stat", SYS_stat},
#else
    {"stat", SC_NONE},
#endif
#ifdef SYS_lstat
    {"lstat", SYS_lstat},
#else
    {"lstat", SC_NONE},
#endif
#ifdef SYS_newfstatat
    {"newfstatat", SYS_newfstatat},
#else
    {"newfstatat", SC_NONE},
#endif
#ifdef SYS_statx
    {"statx", SYS_statx},
#else
    {"statx", SC_NONE},
#endif
#ifdef SYS_access
    {"access", SYS_access},
#else
    {"access", SC_NONE},
#endif
#ifdef SYS_faccessat
    {"faccessat", SYS_faccessat},
#else
    {"faccessat", SC_NONE},
#endif
#ifdef SYS_faccessat2
    {"faccessat2", SYS_faccessat2},
#else
    {"faccessat2", SC_NONE},
#endif
#ifdef SYS_statfs
    {"statfs", SYS_statfs},
#else
    {"statfs", SC_NONE},
#endif
#ifdef SYS_readlink
    {"readlink", SYS_readlink},
#else
    {"readlink", SC_NONE},
#endif
#ifdef SYS_readlinkat
    {"readlinkat", SYS_readlinkat},
#else
    {"readlinkat", SC_NONE},
#endif
#ifdef SYS_chdir
    {"chdir", SYS_chdir},
#else
    {"chdir", SC_NONE},
#endif
#ifdef SYS_chroot
    {"chroot", SYS_chroot},
#else
    {"chroot", SC_NONE},
#endif
#ifdef SYS_getcwd
    {"getcwd", SYS_getcwd},
#else
    {"getcwd", SC_NONE},
#endif
#ifdef SYS_execve
    {"execve", SYS_execve},
#else
    {"execve", SC_NONE},
#endif
#ifdef SYS_execveat
    {"execveat", SYS_execveat},
#else
    {"execveat", SC_NONE},
#endif
#ifdef SYS_uselib
    {"uselib", SYS_uselib},
#else
    {"uselib", SC_NONE},
#endif
#ifdef SYS_truncate
    {"truncate", SYS_truncate},
#else
    {"truncate", SC_NONE},
#endif
#ifdef SYS_mkdir
    {"mkdir", SYS_mkdir},
#else
    {"mkdir", SC_NONE},
#endif
#ifdef SYS_mkdirat
    {"mkdirat", SYS_mkdirat},
#else
    {"mkdirat", SC_NONE},
#endif
#ifdef SYS_rmdir
    {"rmdir", SYS_rmdir},
#else
    {"rmdir", SC_NONE},
#endif
#ifdef SYS_unlink
    {"unlink", SYS_unlink},
#else
    {"unlink", SC_NONE},
#endif
#ifdef SYS_unlinkat
    {"unlinkat", SYS_unlinkat},
#else
    {"unlinkat", SC_NONE},
#endif
#ifdef SYS_rename
    {"rename", SYS_rename},
#else
    {"rename", SC_NONE},
#endif
#ifdef SYS_renameat
    {"renameat", SYS_renameat},
#else
    {"renameat", SC_NONE},
#endif
#ifdef SYS_renameat2
    {"renameat2", SYS_renameat2},
#else
    {"renameat2", SC_NONE},
#endif
#ifdef SYS_link
    {"link", SYS_link},
#else
    {"link", SC_NONE},
#endif
#ifdef SYS_linkat
    {"linkat", SYS_linkat},
#else
    {"linkat", SC_NONE},
#endif
#ifdef SYS_symlink
    {"symlink", SYS_symlink},
#else
    {"symlink", SC_NONE},
#endif
#ifdef SYS_symlinkat
    {"symlinkat", SYS_symlinkat},
#else
    {"symlinkat", SC_NONE},
#endif
#ifdef SYS_chmod
    {"chmod", SYS_chmod},
#else
    {"chmod", SC_NONE},
#endif
#ifdef SYS_fchmodat
    {"fchmodat", SYS_fchmodat},
#else
    {"fchmodat", SC_NONE},
#endif
#ifdef SYS_fchmodat2
    {"fchmodat2", SYS_fchmodat2},
#else
    {"fchmodat2", SC_NONE},
#endif
#ifdef SYS_chown
    {"chown", SYS_chown},
#else
    {"chown", SC_NONE},
#endif
#ifdef SYS_lchown
    {"lchown", SYS_lchown},
#else
    {"lchown", SC_NONE},
#endif
#ifdef SYS_fchown
    {"fchown", SYS_fchown},
#else
    {"fchown", SC_NONE},
#endif
#ifdef SYS_fchownat
    {"fchownat", SYS_fchownat},
#else
    {"fchownat", SC_NONE},
#endif
#ifdef SYS_utime
    {"utime", SYS_utime},
#else
    {"utime", SC_NONE},
#endif
#ifdef SYS_utimes
    {"utimes", SYS_utimes},
#else
    {"utimes", SC_NONE},
#endif
#ifdef SYS_futimesat
    {"futimesat", SYS_futimesat},
#else
    {"futimesat", SC_NONE},
#endif
#ifdef SYS_utimensat
    {"utimensat", SYS_utimensat},
#else
    {"utimensat", SC_NONE},
#endif
#ifdef SYS_mknod
    {"mknod", SYS_mknod},
#else
    {"mknod", SC_NONE},
#endif
#ifdef SYS_mknodat
    {"mknodat", SYS_mknodat},
#else
    {"mknodat", SC_NONE},
#endif
#ifdef SYS_setxattr
    {"setxattr", SYS_setxattr},
#else
    {"setxattr", SC_NONE},
#endif
#ifdef SYS_lsetxattr
    {"lsetxattr", SYS_lsetxattr},
#else
    {"lsetxattr", SC_NONE},
#endif
#ifdef SYS_getxattr
    {"getxattr", SYS_getxattr},
#else
    {"getxattr", SC_NONE},
#endif
#ifdef SYS_lgetxattr
    {"lgetxattr", SYS_lgetxattr},
#else
    {"lgetxattr", SC_NONE},
#endif
#ifdef SYS_listxattr
    {"listxattr", SYS_listxattr},
#else
    {"listxattr", SC_NONE},
#endif
#ifdef SYS_llistxattr
    {"llistxattr", SYS_llistxattr},
#else
    {"llistxattr", SC_NONE},
#endif
#ifdef SYS_removexattr
    {"removexattr", SYS_removexattr},
#else
    {"removexattr", SC_NONE},
#endif
#ifdef SYS_lremovexattr
    {"lremovexattr", SYS_lremovexattr},
#else
    {"lremovexattr", SC_NONE},
#endif
#ifdef SYS_inotify_add_watch
    {"inotify_add_watch", SYS_inotify_add_watch},
#else
    {"inotify_add_watch", SC_NONE},
#endif
#ifdef SYS_fanotify_mark
    {"fanotify_mark", SYS_fanotify_mark},
#else
    {"fanotify_mark", SC_NONE},
#endif
#ifdef SYS_name_to_handle_at
    {"name_to_handle_at", SYS_name_to_handle_at},
#else
    {"name_to_handle_at", SC_NONE},
#endif
#ifdef SYS_mount
    {"mount", SYS_mount},
#else
    {"mount", SC_NONE},
#endif
#ifdef SYS_umount2
    {"umount2", SYS_umount2},
#else
    {"umount2", SC_NONE},
#endif
#ifdef SYS_pivot_root
    {"pivot_root", SYS_pivot_root},
#else
    {"pivot_root", SC_NONE},
#endif
#ifdef SYS_swapon
    {"swapon", SYS_swapon},
#else
    {"swapon", SC_NONE},
#endif
#ifdef SYS_swapoff
    {"swapoff", SYS_swapoff},
#else
    {"swapoff", SC_NONE},
#endif
#ifdef SYS_acct
    {"acct", SYS_acct},
#else
    {"acct", SC_NONE},
#endif
#ifdef SYS_open_tree
    {"open_tree", SYS_open_tree},
#else
    {"open_tree", SC_NONE},
#endif
#ifdef SYS_move_mount
    {"move_mount", SYS_move_mount},
#else
    {"move_mount", SC_NONE},
#endif
#ifdef SYS_fspick
    {"fspick", SYS_fspick},
#else
    {"fspick", SC_NONE},
#endif
#ifdef SYS_mount_setattr
    {"mount_setattr", SYS_mount_setattr},
#else
    {"mount_setattr", SC_NONE},
#endif
#ifdef SYS_bind
    {"bind", SYS_bind},
#else
    {"bind", SC_NONE},
#endif
#ifdef SYS_connect
    {"connect", SYS_connect},
#else
    {"connect", SC_NONE},
#endif
#ifdef SYS_uname
    {"uname", SYS_uname},
#else
    {"uname", SC_NONE},
#endif
#ifdef SYS_getuid
    {"getuid", SYS_getuid},
#else
    {"getuid", SC_NONE},
#endif
#ifdef SYS_geteuid
    {"geteuid", SYS_geteuid},
#else
    {"geteuid", SC_NONE},
#endif
#ifdef SYS_getgid
    {"getgid", SYS_getgid},
#else
    {"getgid", SC_NONE},
#endif
#ifdef SYS_getegid
    {"getegid", SYS_getegid},
#else
    {"getegid", SC_NONE},
#endif
#ifdef SYS_getresuid
    {"getresuid", SYS_getresuid},
#else
    {"getresuid", SC_NONE},
#endif
#ifdef SYS_getresgid
    {"getresgid", SYS_getresgid},
#else
    {"getresgid", SC_NONE},
#endif
#ifdef SYS_setuid
    {"setuid", SYS_setuid},
#else
    {"setuid", SC_NONE},
#endif
#ifdef SYS_setgid
    {"setgid", SYS_setgid},
#else
    {"setgid", SC_NONE},
#endif
#ifdef SYS_setreuid
    {"setreuid", SYS_setreuid},
#else
    {"setreuid", SC_NONE},
#endif
#ifdef SYS_setregid
    {"setregid", SYS_setregid},
#else
    {"setregid", SC_NONE},
#endif
#ifdef SYS_setresuid
    {"setresuid", SYS_setresuid},
#else
    {"setresuid", SC_NONE},
#endif
#ifdef SYS_setresgid
    {"setresgid", SYS_setresgid},
#else
    {"setresgid", SC_NONE},
#endif
#ifdef SYS_setfsuid
    {"setfsuid", SYS_setfsuid},
#else
    {"setfsuid", SC_NONE},
#endif
#ifdef SYS_setfsgid
    {"setfsgid", SYS_setfsgid},
#else
    {"setfsgid", SC_NONE},
#endif
#ifdef SYS_getgroups
    {"getgroups", SYS_getgroups},
#else
    {"getgroups", SC_NONE},
#endif
#ifdef SYS_setgroups
    {"setgroups", SYS_setgroups},
#else
    {"setgroups", SC_NONE},
#endif
#ifdef SYS_ptrace
    {"ptrace", SYS_ptrace},
#else
    {"ptrace", SC_NONE},
#endif
};

static void test_numbers_match_the_c_library(void)
{
    int wrong = 0, checked = 0;

    for (size_t i = 0; i < sizeof(LIBC_NUMBERS) / sizeof(LIBC_NUMBERS[0]); i++) {
        const struct sc_desc *d = sc_by_name(LIBC_NUMBERS[i].name);

        if (d && LIBC_NUMBERS[i].nr == SC_NONE && sc_native_nr(d) >= 440)
            continue; /* newer than these headers (fchmodat2 is Linux 6.6) */
        checked++;
        if (!d || sc_native_nr(d) != LIBC_NUMBERS[i].nr) {
            wrong++;
            printf("# %s: table %d, <sys/syscall.h> %ld\n", LIBC_NUMBERS[i].name, d ? sc_native_nr(d) : -2,
                   LIBC_NUMBERS[i].nr);
        }
    }
    ok(wrong == 0 && checked >= (int)SYSCALLS_COUNT - 2,
       "every number of this architecture's column is the C library's (" TRACER_ARCH_NAME ")");
}

static void test_table(void)
{
    short by_nr[SC_MAX_NR];
    int dup = 0, bad_path = 0;

    sc_index(by_nr);
    for (unsigned i = 0; i < SYSCALLS_COUNT; i++) {
        for (unsigned j = i + 1; j < SYSCALLS_COUNT; j++) {
            if (SYSCALLS[i].nr_x86_64 >= 0 && SYSCALLS[i].nr_x86_64 == SYSCALLS[j].nr_x86_64)
                dup++;
            if (SYSCALLS[i].nr_aarch64 >= 0 && SYSCALLS[i].nr_aarch64 == SYSCALLS[j].nr_aarch64)
                dup++;
        }
        for (int k = 0; k < 2; k++) {
            const struct sc_path *p = &SYSCALLS[i].p[k];

            if (p->path > 5 || p->dirfd > 5 || p->flags > 5 || (p->path >= 0 && p->path == p->dirfd))
                bad_path++;
        }
        if (SYSCALLS[i].fast_dirfd && SYSCALLS[i].p[0].dirfd < 0)
            bad_path++;
    }
    ok(dup == 0, "no syscall number appears twice in a column");
    ok(bad_path == 0, "argument indexes are 0-5 and a fast-dirfd call has a dirfd");
    ok(by_nr[SYS_openat] >= 0 && strcmp(SYSCALLS[by_nr[SYS_openat]].name, "openat") == 0,
       "the index finds openat by its native number");
    ok(by_nr[SYS_read] == -1 && by_nr[SYS_mmap] == -1, "read and mmap are not in the table");
#ifdef __x86_64__
    ok(sc_by_name("newfstatat")->nr_x86_64 == SYS_newfstatat && sc_by_name("execve")->nr_aarch64 == 221 &&
       sc_by_name("openat")->nr_aarch64 == 56 && sc_by_name("getcwd")->nr_aarch64 == 17,
       "x86_64 numbers match <sys/syscall.h>; aarch64 ones the generic table");
    ok(sc_by_name("open")->nr_aarch64 == SC_NONE, "aarch64 has no open(2)");
#endif
}

/* Run the BPF program on a fake seccomp_data (the subset of classic BPF the filter uses). */
static unsigned run_bpf(const struct sock_filter *prog, int n, const struct seccomp_data *d)
{
    uint32_t a = 0;
    const unsigned char *mem = (const unsigned char *)d;

    for (int pc = 0; pc < n; pc++) {
        const struct sock_filter *f = &prog[pc];

        switch (f->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            memcpy(&a, mem + f->k, sizeof(a));
            break;
        case BPF_JMP | BPF_JEQ | BPF_K:
            pc += (a == f->k) ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JSET | BPF_K:
            pc += (a & f->k) ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JGE | BPF_K:
            pc += (a >= f->k) ? f->jt : f->jf;
            break;
        case BPF_RET | BPF_K:
            return f->k;
        default:
            return 0xdead;
        }
    }
    return 0xdead;
}

static unsigned verdict3(const struct sock_filter *prog, int n, const char *name, int64_t arg0, uint64_t arg1,
                         uint64_t arg2, uint64_t arg3)
{
    struct seccomp_data d;

    memset(&d, 0, sizeof(d));
    d.arch = arch_audit();
    d.nr = name ? sc_native_nr(sc_by_name(name)) : SYS_read;
    d.args[0] = (uint64_t)arg0;
    d.args[1] = arg1;
    d.args[2] = arg2;
    d.args[3] = arg3;
    return run_bpf(prog, n, &d) & SECCOMP_RET_ACTION_FULL;
}

static unsigned verdict(const struct sock_filter *prog, int n, const char *name, int64_t arg0)
{
    return verdict3(prog, n, name, arg0, 0x1000, 0, 0);
}

static void test_filter(void)
{
    struct sock_filter prog[1024];
    struct tracer_config plain = {.seccomp = true};
    struct tracer_config strict = {.seccomp = true, .trace_dirfd = true, .emulate_ids = true};
    struct tracer_config emulated = {.seccomp = true, .emulate_ids = true};
    struct seccomp_data other;
    int n = filter_build(&plain, prog, 1024);

    ok(n > 0 && n < 1024, "the filter builds");
    ok(verdict(prog, n, NULL, 0) == SECCOMP_RET_ALLOW, "read runs untraced");
    ok(verdict(prog, n, "openat", AT_FDCWD) == SECCOMP_RET_TRACE, "openat(AT_FDCWD, ...) stops");
    ok(verdict(prog, n, "openat", (int64_t)(uint32_t)AT_FDCWD) == SECCOMP_RET_TRACE,
       "openat with AT_FDCWD in the low 32 bits only stops too");
    ok(verdict3(prog, n, "openat", 3, 0x1000, O_RDONLY | O_NOFOLLOW | O_DIRECTORY, 0) == SECCOMP_RET_ALLOW,
       "openat(3, name, O_RDONLY|O_NOFOLLOW) runs untraced (fast path)");
    ok(verdict3(prog, n, "openat", 3, 0x1000, O_RDONLY, 0) == SECCOMP_RET_TRACE,
       "openat(3, name, O_RDONLY) stops: it follows a final symlink");
    ok(verdict3(prog, n, "openat", 3, 0x1000, O_WRONLY | O_CREAT | O_NOFOLLOW, 0) == SECCOMP_RET_TRACE,
       "openat(3, name, O_WRONLY|O_CREAT|O_NOFOLLOW) stops: it writes");
    ok(verdict3(prog, n, "openat", 3, 0x1000, O_RDWR | O_NOFOLLOW, 0) == SECCOMP_RET_TRACE,
       "openat(3, name, O_RDWR|O_NOFOLLOW) stops");
    ok(verdict3(prog, n, "openat", AT_FDCWD, 0x1000, O_RDONLY | O_NOFOLLOW, 0) == SECCOMP_RET_TRACE,
       "openat(AT_FDCWD, name, O_NOFOLLOW) stops");
    ok(verdict3(prog, n, "newfstatat", 3, 0x1000, 0x2000, AT_SYMLINK_NOFOLLOW) == SECCOMP_RET_ALLOW,
       "fstatat(3, name, AT_SYMLINK_NOFOLLOW) runs untraced");
    ok(verdict3(prog, n, "newfstatat", 3, 0x1000, 0x2000, AT_EMPTY_PATH) == SECCOMP_RET_ALLOW,
       "fstat (fstatat(3, \"\", AT_EMPTY_PATH)) runs untraced");
    ok(verdict3(prog, n, "newfstatat", 3, 0x1000, 0x2000, 0) == SECCOMP_RET_TRACE,
       "fstatat(3, name, 0) stops: it follows");
    ok(verdict3(prog, n, "statx", 3, 0x1000, AT_SYMLINK_NOFOLLOW, 0x7ff) == SECCOMP_RET_ALLOW,
       "statx(3, name, AT_SYMLINK_NOFOLLOW) runs untraced");
    ok(verdict3(prog, n, "readlinkat", 3, 0x1000, 0x2000, 10) == SECCOMP_RET_ALLOW, "readlinkat(3, ...) untraced");
    ok(verdict3(prog, n, "readlinkat", AT_FDCWD, 0x1000, 0x2000, 10) == SECCOMP_RET_TRACE,
       "readlinkat(AT_FDCWD, ...) stops");
    ok(verdict3(prog, n, "utimensat", 3, 0, 0x2000, 0) == SECCOMP_RET_ALLOW, "futimens runs untraced");
    ok(verdict3(prog, n, "utimensat", 3, 0x1000, 0x2000, 0) == SECCOMP_RET_TRACE, "utimensat(3, name) stops");
    ok(verdict3(prog, n, "mkdirat", 3, 0x1000, 0755, 0) == SECCOMP_RET_TRACE, "mkdirat(3, ...) stops: it writes");
    ok(verdict3(prog, n, "unlinkat", 3, 0x1000, 0, 0) == SECCOMP_RET_TRACE, "unlinkat(3, ...) stops");
    ok(verdict(prog, n, "execve", 0) == SECCOMP_RET_TRACE, "execve stops");
    ok(verdict(prog, n, "getuid", 0) == SECCOMP_RET_ALLOW, "getuid runs untraced without id emulation");
    ok(verdict(prog, n, "fchownat", 3) == SECCOMP_RET_TRACE, "fchownat(3, ...) stops: it writes");
    memset(&other, 0, sizeof(other));
    other.arch = 0x40000003; /* AUDIT_ARCH_I386 */
    other.nr = 5;
    ok((run_bpf(prog, n, &other) & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ERRNO, "other ABIs get ENOSYS");
    n = filter_build(&strict, prog, 1024);
    ok(verdict3(prog, n, "openat", 3, 0x1000, O_RDONLY | O_NOFOLLOW, 0) == SECCOMP_RET_TRACE,
       "--trace-dirfd: openat(3, name, O_NOFOLLOW) stops");
    ok(verdict3(prog, n, "newfstatat", 3, 0x1000, 0x2000, AT_EMPTY_PATH) == SECCOMP_RET_TRACE,
       "--trace-dirfd: fstat stops too");
    ok(verdict(prog, n, "getuid", 0) == SECCOMP_RET_TRACE, "id emulation: getuid stops");
    ok(filter_build(&plain, prog, 8) == -ENOSPC, "a short buffer is ENOSPC");
    n = filter_build(&emulated, prog, 1024);
    ok(verdict3(prog, n, "newfstatat", 3, 0x1000, 0x2000, AT_SYMLINK_NOFOLLOW) == SECCOMP_RET_ALLOW &&
           verdict(prog, n, "fstat", 3) == SECCOMP_RET_ALLOW,
       "root emulation: stat by descriptor runs untraced in the main filter");
    ok(verdict(prog, n, "fchownat", 3) == SECCOMP_RET_TRACE && verdict(prog, n, "fchown", 3) == SECCOMP_RET_TRACE,
       "root emulation: every chown stops");
    n = filter_build_owners(prog, 1024);
    ok(n > 0 && verdict(prog, n, "fstat", 3) == SECCOMP_RET_TRACE &&
           verdict3(prog, n, "newfstatat", 3, 0x1000, 0x2000, AT_SYMLINK_NOFOLLOW) == SECCOMP_RET_TRACE &&
           verdict3(prog, n, "statx", 3, 0x1000, AT_EMPTY_PATH, 0x7ff) == SECCOMP_RET_TRACE,
       "the owners filter stops every stat by descriptor");
    ok(verdict(prog, n, NULL, 0) == SECCOMP_RET_ALLOW && verdict(prog, n, "openat", 3) == SECCOMP_RET_ALLOW,
       "the owners filter lets the rest run");
    ok((run_bpf(prog, n, &other) & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ALLOW,
       "the owners filter leaves other ABIs to the main filter");
    ok(filter_build_owners(prog, 4) == -ENOSPC, "a short buffer for the owners filter is ENOSPC");
}

static unsigned verdict_nr(const struct sock_filter *prog, int n, int nr, int64_t arg0, uint64_t arg1,
                           uint64_t arg2, uint64_t arg3)
{
    struct seccomp_data d;

    memset(&d, 0, sizeof(d));
    d.arch = arch_audit();
    d.nr = nr;
    d.args[0] = (uint64_t)arg0;
    d.args[1] = arg1;
    d.args[2] = arg2;
    d.args[3] = arg3;
    return run_bpf(prog, n, &d) & SECCOMP_RET_ACTION_FULL;
}

static void test_filter_reserved(void)
{
    struct sock_filter prog[1024];
    struct tracer_config cfg = {.seccomp = true, .reserved_fd = 960};
    struct tracer_config strict = {.seccomp = true, .trace_dirfd = true, .reserved_fd = 960};
    int n = filter_build(&cfg, prog, 1024);

    ok(n > 0 && verdict3(prog, n, "openat", 959, 0x1000, O_RDONLY | O_NOFOLLOW, 0) == SECCOMP_RET_ALLOW,
       "reserved range: openat(959, name, O_NOFOLLOW) below it runs untraced");
    ok(verdict3(prog, n, "openat", 960, 0x1000, O_RDONLY | O_NOFOLLOW, 0) == SECCOMP_RET_TRACE &&
           verdict3(prog, n, "openat", 1000, 0x1000, O_RDONLY | O_NOFOLLOW | O_DIRECTORY, 0) == SECCOMP_RET_TRACE,
       "reserved range: openat(960 and up, name, O_NOFOLLOW) stops");
    ok(verdict3(prog, n, "newfstatat", 960, 0x1000, 0x2000, AT_SYMLINK_NOFOLLOW) == SECCOMP_RET_TRACE &&
           verdict3(prog, n, "newfstatat", 959, 0x1000, 0x2000, AT_SYMLINK_NOFOLLOW) == SECCOMP_RET_ALLOW,
       "reserved range: fstatat by a dirfd in it stops, below it not");
    ok(verdict3(prog, n, "readlinkat", 960, 0x1000, 0x2000, 10) == SECCOMP_RET_TRACE &&
           verdict3(prog, n, "readlinkat", 3, 0x1000, 0x2000, 10) == SECCOMP_RET_ALLOW,
       "reserved range: readlinkat by a dirfd in it stops");
    ok(verdict3(prog, n, "openat", AT_FDCWD, 0x1000, O_RDONLY | O_NOFOLLOW, 0) == SECCOMP_RET_TRACE,
       "reserved range: AT_FDCWD still stops (tested before the range)");
    ok(verdict_nr(prog, n, TRACER_NR_FCNTL, 960, F_DUPFD_CLOEXEC, 3, 0) == SECCOMP_RET_TRACE &&
           verdict_nr(prog, n, TRACER_NR_FCNTL, 960, F_DUPFD, 3, 0) == SECCOMP_RET_TRACE &&
           verdict_nr(prog, n, TRACER_NR_FCNTL, 960, F_GETFL, 0, 0) == SECCOMP_RET_ALLOW &&
           verdict_nr(prog, n, TRACER_NR_FCNTL, 3, F_DUPFD, 960, 0) == SECCOMP_RET_ALLOW,
       "reserved range: only fcntl(F_DUPFD*) of a descriptor in it stops");
    ok(verdict_nr(prog, n, TRACER_NR_DUP, 960, 0, 0, 0) == SECCOMP_RET_TRACE && verdict_nr(prog, n, TRACER_NR_DUP, 3, 0, 0, 0) ==
           SECCOMP_RET_ALLOW, "reserved range: dup of a descriptor in it stops");
    n = filter_build(&strict, prog, 1024);
    ok(verdict_nr(prog, n, TRACER_NR_FCNTL, 960, F_DUPFD, 3, 0) == SECCOMP_RET_ALLOW,
       "--trace-dirfd: no reserved range (every dirfd stops anyway)");
}

static void test_shebang(void)
{
    char interp[64], arg[64];
    const char *two = "#! /usr/bin/env  python3 -u  \nprint(1)\n";

    ok(exec_parse_shebang("#!/bin/sh\necho", 14, interp, sizeof(interp), arg, sizeof(arg)) == 0 &&
       strcmp(interp, "/bin/sh") == 0 && arg[0] == '\0', "#!/bin/sh");
    ok(exec_parse_shebang(two, strlen(two), interp, sizeof(interp), arg, sizeof(arg)) == 0 &&
       strcmp(interp, "/usr/bin/env") == 0 && strcmp(arg, "python3 -u") == 0,
       "spaces, and everything after the interpreter is one argument (as Linux does)");
    ok(exec_parse_shebang("#!/bin/bash\r\n", 13, interp, sizeof(interp), arg, sizeof(arg)) == 0 &&
       strcmp(interp, "/bin/bash\r") == 0 && arg[0] == '\0', "a CR before the newline stays (bad interpreter, as on Linux)");
    ok(exec_parse_shebang("#!  \n", 5, interp, sizeof(interp), arg, sizeof(arg)) == -ENOEXEC, "#! alone is ENOEXEC");
    ok(exec_parse_shebang("\177ELF", 4, interp, sizeof(interp), arg, sizeof(arg)) == -ENOEXEC, "ELF is no script");
    ok(exec_parse_shebang("#!/a/very/long/interpreter", 26, interp, 8, arg, sizeof(arg)) == -ENAMETOOLONG,
       "an interpreter longer than the buffer");
}

static int elf_of(const char *path, char *interp, size_t size)
{
    unsigned char head[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = pread(fd, head, sizeof(head), 0);
    rc = exec_elf_interp(fd, head, n > 0 ? (size_t)n : 0, interp, size);
    close(fd);
    return rc;
}

static void test_elf(const char *self, const char *static_exe)
{
    char interp[PATH_MAX];
    int rc = elf_of(self, interp, sizeof(interp));

    ok(rc == 1 && interp[0] == '/', "this dynamic test program has a PT_INTERP");
    if (static_exe) {
        ok(elf_of(static_exe, interp, sizeof(interp)) == 0, "a static program has none");
    }
    ok(elf_of("/etc/passwd", interp, sizeof(interp)) == -ENOEXEC, "a text file is no ELF");
}

static void test_creds(void)
{
    struct creds c = {0};

    ok(creds_setresuid(&c, 100, 100, 100) == 0 && c.ruid == 100 && c.euid == 100 && c.suid == 100 && c.fsuid == 100,
       "root may setresuid to anything");
    ok(creds_setuid(&c, 0) == -EPERM && c.euid == 100, "and then cannot get root back");
    c = (struct creds){0};
    ok(creds_setresuid(&c, -1, 42, -1) == 0 && c.ruid == 0 && c.euid == 42 && c.suid == 0,
       "-1 keeps an id: a temporary drop");
    ok(creds_setuid(&c, 0) == 0 && c.euid == 0 && c.ruid == 0, "the saved uid 0 may come back");
    ok(creds_setreuid(&c, 5, 6) == 0 && c.ruid == 5 && c.euid == 6 && c.suid == 6, "setreuid sets the saved uid");
    ok(creds_setreuid(&c, 7, -1) == -EPERM, "an unprivileged setreuid to a foreign uid is EPERM");
    c = (struct creds){0};
    ok(creds_setgid(&c, 50) == 0 && c.rgid == 50 && c.egid == 50 && c.sgid == 50, "root may setgid");
    ok(creds_setresgid(&c, -1, 60, -1) == 0 && c.egid == 60 && c.fsgid == 60, "setresgid with -1");
    c.euid = 9;
    ok(creds_setresgid(&c, 1, -1, -1) == -EPERM, "an unprivileged setresgid to a foreign gid is EPERM");
    ok(creds_setregid(&c, -1, 50) == 0 && c.egid == 50, "but to its own real gid works");
    ok(creds_setuid(&c, -1) == -EINVAL, "setuid(-1) is EINVAL");
}

/* What the child of a backstop test could do: a bit per case, set when the kernel answered as
 * expected. */
static int backstop_child(struct tracer *t, const char *base)
{
    char path[PATH_MAX], other[PATH_MAX];
    int bits = 0, fd;

    if (hb_landlock_enforce(&t->landlock) < 0)
        return 0;
    snprintf(path, sizeof(path), "%s/root/inside", base);
    if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0 && close(fd) == 0)
        bits |= 1;
    snprintf(path, sizeof(path), "%s/outside", base);
    if (open(path, O_WRONLY | O_CREAT, 0600) < 0 && errno == EACCES)
        bits |= 2;
    snprintf(path, sizeof(path), "%s/root/inside", base);
    snprintf(other, sizeof(other), "%s/root/sub/moved", base);
    if (rename(path, other) == 0)
        bits |= 4; /* a rename between directories of the rootfs (REFER) */
    snprintf(path, sizeof(path), "%s/vol/x", base);
    if (open(path, O_WRONLY | O_CREAT, 0600) < 0 && errno == EACCES)
        bits |= 8; /* a read-only binding */
    snprintf(path, sizeof(path), "%s/rw/x", base);
    if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0 && close(fd) == 0)
        bits |= 16;
    if (mkdir("/tmp/hpcbox-tap-never", 0700) < 0 && errno == EACCES)
        bits |= 32;
    return bits;
}

static void test_backstop(void)
{
    static struct tracer t;
    struct tracer_config cfg = {.seccomp = true, .landlock = true};
    char base[] = "/tmp/hpcbox-tap-XXXXXX", dir[PATH_MAX];
    const char *subs[] = {"root", "root/sub", "vol", "rw"};
    int status = 0, ready;
    pid_t child;

    if (hb_landlock_abi() < HB_LANDLOCK_MIN_ABI) {
        for (int i = 0; i < 6; i++)
            printf("ok %d - # SKIP no Landlock ABI >= 2 in this kernel\n", ++n_tests);
        return;
    }
    ready = mkdtemp(base) != NULL;
    for (int i = 0; i < 4 && ready; i++) {
        snprintf(dir, sizeof(dir), "%s/%s", base, subs[i]);
        ready = mkdir(dir, 0700) == 0;
    }
    snprintf(dir, sizeof(dir), "%s/root", base);
    ready = ready && tracer_init(&t, &cfg, dir) == 0;
    snprintf(dir, sizeof(dir), "%s/vol", base);
    ready = ready && tracer_add_binding(&t, "/vol", dir, true) == 0;
    snprintf(dir, sizeof(dir), "%s/rw", base);
    ready = ready && tracer_add_binding(&t, "/rw", dir, false) == 0;
    ready = ready && backstop_prepare(&t) == 0 && t.landlock.fd >= 0;
    ok(ready, "the backstop's ruleset builds for a rootfs and two bindings");
    child = ready ? fork() : -1;
    if (child == 0)
        _exit(backstop_child(&t, base));
    hb_landlock_close(&t.landlock);
    if (child > 0)
        waitpid(child, &status, 0);
    status = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    ok(status & 1, "backstop: a file is created in the rootfs");
    ok(status & 2, "backstop: a file beside the rootfs is EACCES");
    ok(status & 4, "backstop: rename between directories of the rootfs works");
    ok((status & 8) && (status & 16), "backstop: a read-only binding refuses, a read-write one takes a file");
    ok(status & 32, "backstop: mkdir in the host's /tmp is EACCES");
    tracer_destroy(&t);
    snprintf(dir, sizeof(dir), "rm -rf '%s'", base);
    if (system(dir) != 0)
        printf("# could not remove %s\n", base);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_table();
    test_numbers_match_the_c_library();
    test_filter();
    test_filter_reserved();
    test_shebang();
    test_elf("/proc/self/exe", argc > 1 ? argv[1] : NULL);
    test_creds();
    test_backstop();
    printf("1..%d\n", n_tests);
    if (n_failed)
        printf("# %d of %d failed\n", n_failed, n_tests);
    return n_failed ? 1 : 0;
}

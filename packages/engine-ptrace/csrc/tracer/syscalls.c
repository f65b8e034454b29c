/* syscalls: the table (see syscalls.h). Numbers: the kernel's arch/x86/entry/syscalls/syscall_64.tbl
 * and include/uapi/asm-generic/unistd.h (aarch64). */
#include "syscalls.h"

#include <string.h>

#define NOP {-1, -1, F_FOLLOW, -1, W_NO}
#define P(dirfd, path, follow, flags, write) {dirfd, path, follow, flags, write}
/* A syscall with one path relative to the cwd / to a dirfd. */
#define CWD1(name, x, a, kind, follow, write) {name, x, a, kind, false, {P(-1, 0, follow, -1, write), NOP}}
#define AT1(name, x, a, kind, fast, d, p, follow, fl, write) \
    {name, x, a, kind, fast, {P(d, p, follow, fl, write), NOP}}
#define ARGLESS(name, x, a, kind) {name, x, a, kind, false, {NOP, NOP}}

const struct sc_desc SYSCALLS[] = {
    /* open and create */
    {"open", 2, SC_NONE, SK_PATH, false, {P(-1, 0, F_OPEN, 1, W_OPEN), NOP}},
    CWD1("creat", 85, SC_NONE, SK_PATH, F_FOLLOW, W_YES),
    AT1("openat", 257, 56, SK_PATH, true, 0, 1, F_OPEN, 2, W_OPEN),
    AT1("openat2", 437, 437, SK_PATH, true, 0, 1, F_OPENHOW, 2, W_OPEN),
    /* metadata */
    CWD1("stat", 4, SC_NONE, SK_STAT, F_FOLLOW, W_NO),
    CWD1("lstat", 6, SC_NONE, SK_STAT, F_NOFOLLOW, W_NO),
    AT1("newfstatat", 262, 79, SK_STAT, true, 0, 1, F_AT_NOFOLLOW, 3, W_NO),
    AT1("statx", 332, 291, SK_STAT, true, 0, 1, F_AT_NOFOLLOW, 2, W_NO),
    ARGLESS("fstat", 5, 80, SK_STAT), /* only with id emulation: owners as the container shows them */
    CWD1("access", 21, SC_NONE, SK_PATH, F_FOLLOW, W_NO),
    AT1("faccessat", 269, 48, SK_PATH, true, 0, 1, F_FOLLOW, -1, W_NO),
    AT1("faccessat2", 439, 439, SK_PATH, true, 0, 1, F_AT_NOFOLLOW, 3, W_NO),
    CWD1("statfs", 137, 43, SK_PATH, F_FOLLOW, W_NO),
    CWD1("readlink", 89, SC_NONE, SK_READLINK, F_NOFOLLOW, W_NO),
    AT1("readlinkat", 267, 78, SK_READLINK, true, 0, 1, F_NOFOLLOW, -1, W_NO),
    /* the cwd and the root */
    CWD1("chdir", 80, 49, SK_PATH, F_FOLLOW, W_NO),
    CWD1("chroot", 161, 51, SK_CHROOT, F_FOLLOW, W_NO),
    ARGLESS("getcwd", 79, 17, SK_GETCWD),
    /* exec */
    CWD1("execve", 59, 221, SK_EXEC, F_FOLLOW, W_NO),
    AT1("execveat", 322, 281, SK_EXECAT, false, 0, 1, F_AT_NOFOLLOW, 4, W_NO),
    CWD1("uselib", 134, SC_NONE, SK_PATH, F_FOLLOW, W_NO),
    /* changing the tree */
    CWD1("truncate", 76, 45, SK_PATH, F_FOLLOW, W_YES),
    CWD1("mkdir", 83, SC_NONE, SK_PATH, F_PARENT, W_YES),
    AT1("mkdirat", 258, 34, SK_PATH, true, 0, 1, F_PARENT, -1, W_YES),
    CWD1("rmdir", 84, SC_NONE, SK_PATH, F_RMDIR, W_YES),
    CWD1("unlink", 87, SC_NONE, SK_PATH, F_UNLINK, W_YES),
    AT1("unlinkat", 263, 35, SK_PATH, true, 0, 1, F_UNLINKAT, 2, W_YES),
    {"rename", 82, SC_NONE, SK_PATH, false, {P(-1, 0, F_RENAME, -1, W_YES), P(-1, 1, F_RENAME, -1, W_YES)}},
    {"renameat", 264, 38, SK_PATH, false, {P(0, 1, F_RENAME, -1, W_YES), P(2, 3, F_RENAME, -1, W_YES)}},
    {"renameat2", 316, 276, SK_PATH, false, {P(0, 1, F_RENAME, -1, W_YES), P(2, 3, F_RENAME, -1, W_YES)}},
    {"link", 86, SC_NONE, SK_PATH, false, {P(-1, 0, F_NOFOLLOW, -1, W_NO), P(-1, 1, F_PARENT, -1, W_YES)}},
    {"linkat", 265, 37, SK_PATH, false, {P(0, 1, F_AT_FOLLOW, 4, W_NO), P(2, 3, F_PARENT, -1, W_YES)}},
    /* symlink(target, linkpath): the target is link text, a guest path kept as it is */
    {"symlink", 88, SC_NONE, SK_PATH, false, {P(-1, 1, F_PARENT, -1, W_YES), NOP}},
    AT1("symlinkat", 266, 36, SK_PATH, true, 1, 2, F_PARENT, -1, W_YES),
    CWD1("chmod", 90, SC_NONE, SK_PATH, F_FOLLOW, W_YES),
    AT1("fchmodat", 268, 53, SK_PATH, true, 0, 1, F_FOLLOW, -1, W_YES),
    AT1("fchmodat2", 452, 452, SK_PATH, true, 0, 1, F_AT_NOFOLLOW, 3, W_YES),
    CWD1("chown", 92, SC_NONE, SK_CHOWN, F_FOLLOW, W_YES),
    CWD1("lchown", 94, SC_NONE, SK_CHOWN, F_NOFOLLOW, W_YES),
    ARGLESS("fchown", 93, 55, SK_CHOWN),
    AT1("fchownat", 260, 54, SK_CHOWN, true, 0, 1, F_AT_NOFOLLOW, 4, W_YES),
    CWD1("utime", 132, SC_NONE, SK_PATH, F_FOLLOW, W_YES),
    CWD1("utimes", 235, SC_NONE, SK_PATH, F_FOLLOW, W_YES),
    AT1("futimesat", 261, SC_NONE, SK_PATH, true, 0, 1, F_FOLLOW, -1, W_YES),
    AT1("utimensat", 280, 88, SK_PATH, true, 0, 1, F_AT_NOFOLLOW, 3, W_YES),
    CWD1("mknod", 133, SC_NONE, SK_MKNOD, F_PARENT, W_YES),
    AT1("mknodat", 259, 33, SK_MKNOD, true, 0, 1, F_PARENT, -1, W_YES),
    /* extended attributes */
    CWD1("setxattr", 188, 5, SK_PATH, F_FOLLOW, W_YES),
    CWD1("lsetxattr", 189, 6, SK_PATH, F_NOFOLLOW, W_YES),
    CWD1("getxattr", 191, 8, SK_PATH, F_FOLLOW, W_NO),
    CWD1("lgetxattr", 192, 9, SK_PATH, F_NOFOLLOW, W_NO),
    CWD1("listxattr", 194, 11, SK_PATH, F_FOLLOW, W_NO),
    CWD1("llistxattr", 195, 12, SK_PATH, F_NOFOLLOW, W_NO),
    CWD1("removexattr", 197, 14, SK_PATH, F_FOLLOW, W_YES),
    CWD1("lremovexattr", 198, 15, SK_PATH, F_NOFOLLOW, W_YES),
    /* watches, handles, mounts (the mount family fails without privileges, but on guest paths) */
    AT1("inotify_add_watch", 254, 27, SK_PATH, false, -1, 1, F_FOLLOW, -1, W_NO),
    AT1("fanotify_mark", 301, 263, SK_PATH, false, 3, 4, F_FOLLOW, -1, W_NO),
    AT1("name_to_handle_at", 303, 264, SK_PATH, true, 0, 1, F_AT_FOLLOW, 4, W_NO),
    {"mount", 165, 40, SK_PATH, false, {P(-1, 1, F_FOLLOW, -1, W_NO), NOP}},
    CWD1("umount2", 166, 39, SK_PATH, F_FOLLOW, W_NO),
    {"pivot_root", 155, 41, SK_PATH, false, {P(-1, 0, F_FOLLOW, -1, W_NO), P(-1, 1, F_FOLLOW, -1, W_NO)}},
    CWD1("swapon", 167, 224, SK_PATH, F_FOLLOW, W_NO),
    CWD1("swapoff", 168, 225, SK_PATH, F_FOLLOW, W_NO),
    CWD1("acct", 163, 89, SK_PATH, F_FOLLOW, W_YES),
    AT1("open_tree", 428, 428, SK_PATH, false, 0, 1, F_FOLLOW, -1, W_NO),
    {"move_mount", 429, 429, SK_PATH, false, {P(0, 1, F_FOLLOW, -1, W_NO), P(2, 3, F_FOLLOW, -1, W_NO)}},
    AT1("fspick", 433, 433, SK_PATH, false, 0, 1, F_FOLLOW, -1, W_NO),
    AT1("mount_setattr", 442, 442, SK_PATH, false, 0, 1, F_FOLLOW, -1, W_NO),
    /* sockets: AF_UNIX paths */
    ARGLESS("bind", 49, 200, SK_SOCKADDR),
    ARGLESS("connect", 42, 203, SK_SOCKADDR),
    /* a debugger inside: refused with a line on stderr (rootemu.c) */
    ARGLESS("ptrace", 101, 117, SK_PTRACE),
    /* emulation */
    ARGLESS("uname", 63, 160, SK_UNAME),
    ARGLESS("getuid", 102, 174, SK_IDS),
    ARGLESS("geteuid", 107, 175, SK_IDS),
    ARGLESS("getgid", 104, 176, SK_IDS),
    ARGLESS("getegid", 108, 177, SK_IDS),
    ARGLESS("getresuid", 118, 148, SK_IDS),
    ARGLESS("getresgid", 120, 150, SK_IDS),
    ARGLESS("setuid", 105, 146, SK_IDS),
    ARGLESS("setgid", 106, 144, SK_IDS),
    ARGLESS("setreuid", 113, 145, SK_IDS),
    ARGLESS("setregid", 114, 143, SK_IDS),
    ARGLESS("setresuid", 117, 147, SK_IDS),
    ARGLESS("setresgid", 119, 149, SK_IDS),
    ARGLESS("setfsuid", 122, 151, SK_IDS),
    ARGLESS("setfsgid", 123, 152, SK_IDS),
    ARGLESS("getgroups", 115, 158, SK_IDS),
    ARGLESS("setgroups", 116, 159, SK_IDS),
};

const unsigned SYSCALLS_COUNT = sizeof(SYSCALLS) / sizeof(SYSCALLS[0]);

int sc_native_nr(const struct sc_desc *d)
{
#if defined(__x86_64__)
    return d->nr_x86_64;
#elif defined(__aarch64__)
    return d->nr_aarch64;
#else
    (void)d;
    return SC_NONE;
#endif
}

void sc_index(short by_nr[SC_MAX_NR])
{
    for (unsigned i = 0; i < SC_MAX_NR; i++)
        by_nr[i] = -1;
    for (unsigned i = 0; i < SYSCALLS_COUNT; i++) {
        int nr = sc_native_nr(&SYSCALLS[i]);

        if (nr >= 0 && nr < SC_MAX_NR)
            by_nr[nr] = (short)i;
    }
}

const struct sc_desc *sc_by_name(const char *name)
{
    for (unsigned i = 0; i < SYSCALLS_COUNT; i++)
        if (strcmp(SYSCALLS[i].name, name) == 0)
            return &SYSCALLS[i];
    return NULL;
}

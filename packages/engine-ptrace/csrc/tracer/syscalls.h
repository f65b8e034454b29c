/* syscalls: the one table of the syscalls the tracer stops on, with their x86_64 and aarch64
 * numbers and what their arguments mean (which hold paths, relative to which dirfd, whether
 * the final symlink is followed, whether they write). */
#ifndef HPCBOX_TRACER_SYSCALLS_H
#define HPCBOX_TRACER_SYSCALLS_H

#include <stdbool.h>

#define SC_NONE (-1)    /* the syscall does not exist on that architecture */
#define SC_MAX_NR 512   /* syscall numbers the lookup table covers */

enum sc_kind {
    SK_PATH,       /* path arguments only */
    SK_READLINK,   /* paths, and the link text comes back (reverse translation) */
    SK_GETCWD,
    SK_EXEC,       /* execve: #!, the guest's ELF interpreter */
    SK_EXECAT,     /* execveat */
    SK_SOCKADDR,   /* bind/connect: an AF_UNIX path in a struct sockaddr_un */
    SK_UNAME,      /* only with --hostname */
    SK_IDS,        /* get/set uid/gid family: only with id emulation */
    SK_CHOWN,      /* chown family: neutralised with id emulation (paths still translated) */
    SK_MKNOD,      /* device nodes become regular files with id emulation */
    SK_STAT,       /* paths; with id emulation answered by the tracer, owners as the container shows them */
    SK_CHROOT,     /* chroot: emulated per process (chroot.c) */
    SK_PTRACE,     /* ptrace by the guest: refused with one line (its processes are traced already) */
};

enum sc_follow {
    F_FOLLOW,      /* stat semantics */
    F_NOFOLLOW,    /* lstat semantics (the final name is the object) */
    F_OPEN,        /* follow unless O_NOFOLLOW; O_CREAT|O_EXCL: F_PARENT */
    F_AT_NOFOLLOW, /* follow unless AT_SYMLINK_NOFOLLOW in the flags argument */
    F_AT_FOLLOW,   /* follow only with AT_SYMLINK_FOLLOW in the flags argument (linkat) */
    F_OPENHOW,     /* openat2: flags inside struct open_how */
    F_PARENT,      /* the final name is created: kept as written (guestpath.h, GP_PARENT) */
    F_RMDIR,       /* F_PARENT, removed as a directory (a mount point: EBUSY) */
    F_UNLINK,      /* F_PARENT, removed as a non-directory (a mount point: EBUSY) */
    F_RENAME,      /* F_PARENT, moved (a mount point: EBUSY) */
    F_UNLINKAT,    /* F_RMDIR with AT_REMOVEDIR in the flags argument, else F_UNLINK */
};

enum sc_write {
    W_NO,
    W_YES,         /* modifies the file system at that path */
    W_OPEN,        /* writes when the flags argument asks for it */
};

struct sc_path {
    signed char dirfd;     /* argument index of the directory fd, -1: relative to the cwd */
    signed char path;      /* argument index of the path, -1: unused slot */
    unsigned char follow;  /* enum sc_follow */
    signed char flags;     /* argument index of the flags for F_OPEN/F_AT_*, else -1 */
    unsigned char write;   /* enum sc_write */
};

struct sc_desc {
    const char *name;
    int nr_x86_64;
    int nr_aarch64;
    unsigned char kind;    /* enum sc_kind */
    bool fast_dirfd;       /* may run untraced when the (first) dirfd is a real fd */
    struct sc_path p[2];
};

extern const struct sc_desc SYSCALLS[];
extern const unsigned SYSCALLS_COUNT;

/* The number of d on the architecture this was built for (SC_NONE if absent). */
int sc_native_nr(const struct sc_desc *d);

/* Fill by_nr[SC_MAX_NR] with indexes into SYSCALLS (-1 for untraced numbers). */
void sc_index(short by_nr[SC_MAX_NR]);

/* The descriptor called name, or NULL (for tests and statistics). */
const struct sc_desc *sc_by_name(const char *name);

#endif

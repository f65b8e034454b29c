/* landlock: see landlock.h. The structures and constants are the kernel's uapi
 * (include/uapi/linux/landlock.h), declared here so that any libc's headers build it. Every call
 * is a raw system call: in the preload library, libc's open or fstat would be its own wrappers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef O_PATH /* hidden when <fcntl.h> came before _GNU_SOURCE (the preload library's compat.h) */
#define O_PATH 010000000
#endif

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444 /* the same number on x86_64 and aarch64 */
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_WRITE_FILE (1ULL << 1)
#define LL_REMOVE_DIR (1ULL << 4)
#define LL_REMOVE_FILE (1ULL << 5)
#define LL_MAKE_CHAR (1ULL << 6)
#define LL_MAKE_DIR (1ULL << 7)
#define LL_MAKE_REG (1ULL << 8)
#define LL_MAKE_SOCK (1ULL << 9)
#define LL_MAKE_FIFO (1ULL << 10)
#define LL_MAKE_BLOCK (1ULL << 11)
#define LL_MAKE_SYM (1ULL << 12)
#define LL_REFER (1ULL << 13)    /* ABI 2 */
#define LL_TRUNCATE (1ULL << 14) /* ABI 3 */

/* What a rule on a file that is not a directory may allow (the kernel refuses the rest). */
#define LL_FILE_RIGHTS (LL_WRITE_FILE | LL_TRUNCATE)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

int hb_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

    return abi < 0 ? -errno : (int)abi;
}

static unsigned long long write_rights(int abi)
{
    unsigned long long r = LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_CHAR | LL_MAKE_DIR |
                           LL_MAKE_REG | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK | LL_MAKE_SYM;

    if (abi >= 2)
        r |= LL_REFER;
    if (abi >= 3)
        r |= LL_TRUNCATE;
    return r;
}

int hb_landlock_open(struct hb_landlock *ll)
{
    struct ll_ruleset_attr attr;
    long fd;

    ll->fd = -1;
    ll->abi = hb_landlock_abi();
    if (ll->abi < 0)
        return ll->abi;
    if (ll->abi < HB_LANDLOCK_MIN_ABI)
        return -EOPNOTSUPP;
    ll->handled = write_rights(ll->abi);
    attr.handled_access_fs = ll->handled;
    fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (fd < 0)
        return -errno;
    ll->fd = (int)fd;
    return 0;
}

int hb_landlock_allow_fd(struct hb_landlock *ll, int fd)
{
    struct ll_path_beneath_attr rule;
    struct stat st;

    if (ll->fd < 0)
        return -EBADF;
    if (syscall(SYS_fstat, fd, &st) < 0)
        return -errno;
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
        return 0; /* not reached through a path: nothing to allow */
    rule.allowed_access = S_ISDIR(st.st_mode) ? ll->handled : (ll->handled & LL_FILE_RIGHTS);
    rule.parent_fd = fd;
    if (syscall(SYS_landlock_add_rule, ll->fd, LL_RULE_PATH_BENEATH, &rule, 0) < 0)
        return -errno;
    return 0;
}

int hb_landlock_allow(struct hb_landlock *ll, const char *path)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -errno;
    rc = hb_landlock_allow_fd(ll, fd);
    syscall(SYS_close, fd);
    return rc;
}

int hb_landlock_allow_stdio(struct hb_landlock *ll)
{
    for (int fd = 0; fd <= 2; fd++) {
        int fl = (int)syscall(SYS_fcntl, fd, F_GETFL);
        struct stat st;
        int rc;

        if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH))
            continue; /* closed, or not open for writing */
        if (syscall(SYS_fstat, fd, &st) < 0)
            return -errno;
        if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
            continue; /* a pipe, a socket: not in the file system */
        rc = hb_landlock_allow_fd(ll, fd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int hb_landlock_enforce(struct hb_landlock *ll)
{
    int rc = 0;

    if (ll->fd < 0)
        return -EBADF;
    if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, ll->fd, 0) < 0)
        rc = -errno;
    hb_landlock_close(ll);
    return rc;
}

void hb_landlock_close(struct hb_landlock *ll)
{
    if (ll->fd >= 0)
        syscall(SYS_close, ll->fd);
    ll->fd = -1;
}

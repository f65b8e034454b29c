/* chroot(2) inside the container, emulated (debootstrap, pbuilder, mock and build tools use it):
 * the kernel would refuse it (no CAP_SYS_CHROOT) and take the path as a host path. The library
 * moves this process's guest root instead (config.c: hp_chroot), and passes it on to the programs
 * it starts. Rules as Linux: the caller must be root (emulated uid 0: CAP_SYS_CHROOT in the
 * container), the path a directory it may search; the cwd stays (`chroot .`). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "preload.h"

WRAP int chroot(const char *path)
{
    char canon[PATH_MAX], host[PATH_MAX];
    struct stat st;
    int rc;

    if (!hp_conf())
        return REAL(chroot)(path);
    if (hp_null(path)) {
        errno = EFAULT;
        return -1;
    }
    if (hp_fake_euid() != 0) {
        errno = EPERM; /* not the container's root (or ids not emulated: the caller's own) */
        return -1;
    }
    rc = hp_canonical(AT_FDCWD, path, HP_FOLLOW, canon);
    if (rc == -EXDEV)
        rc = -ENOENT; /* relative to a cwd outside the root */
    if (rc == 0)
        rc = gp_map_canonical(&hp_conf()->ctx, canon, host, sizeof(host));
    if (rc == 0 && hp_sys_fstatat(AT_FDCWD, host, &st, 0) < 0)
        rc = -errno;
    if (rc == 0 && !S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    if (rc == 0 && syscall(SYS_faccessat, AT_FDCWD, host, X_OK) < 0)
        rc = -errno;
    if (rc == 0)
        rc = hp_chroot(canon);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

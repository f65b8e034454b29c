/* bind/connect of AF_UNIX sockets with a path name: the path is a guest path. Abstract names
 * (sun_path[0] == 0) and other families pass through. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "preload.h"

/* The host path `host` relative to the process's real cwd when it lies below it, else host. */
static const char *under_cwd(const char *host)
{
    char cwd[PATH_MAX];
    size_t n;

    if (!REAL(getcwd)(cwd, sizeof(cwd)))
        return host;
    n = strlen(cwd);
    if (n > 1 && strncmp(host, cwd, n) == 0 && host[n] == '/' && host[n + 1])
        return host + n + 1;
    return host;
}

/* Fill *out with the translated address; 0 = use it, 1 = use the original, or -errno. */
static int unix_address(const struct sockaddr *addr, socklen_t len, struct sockaddr_un *out,
                        socklen_t *out_len, int follow)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
    char guest[sizeof(un->sun_path) + 1], buf[PATH_MAX];
    size_t n, hlen;
    const char *p;

    if (!hp_conf() || !addr || len <= offsetof(struct sockaddr_un, sun_path) ||
        addr->sa_family != AF_UNIX || un->sun_path[0] == '\0')
        return 1;
    n = len - offsetof(struct sockaddr_un, sun_path);
    if (n > sizeof(un->sun_path))
        n = sizeof(un->sun_path);
    memcpy(guest, un->sun_path, n);
    guest[n] = '\0';
    p = hp_path(AT_FDCWD, guest, follow, buf);
    if (!p)
        return -errno;
    if (p == guest)
        return 1;
    if (strlen(p) >= sizeof(out->sun_path) && guest[0] != '/')
        p = under_cwd(p); /* too long made absolute: relative to the real cwd, as the program wrote it */
    hlen = strlen(p);
    if (hlen > sizeof(out->sun_path)) {
        hp_debug("hpcbox-preload: socket %s is %s on the host: longer than sun_path", guest, p);
        return -ENAMETOOLONG;
    }
    memset(out, 0, sizeof(*out));
    out->sun_family = AF_UNIX;
    memcpy(out->sun_path, p, hlen); /* 108 bytes without a NUL are allowed, as by the kernel */
    *out_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + hlen +
                           (hlen < sizeof(out->sun_path) ? 1 : 0));
    return 0;
}

WRAP int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_un un;
    socklen_t un_len;
    int rc = unix_address(addr, len, &un, &un_len, HP_PARENT | HP_WRITE);

    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return rc == 0 ? REAL(bind)(fd, (struct sockaddr *)&un, un_len) : REAL(bind)(fd, addr, len);
}

WRAP int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_un un;
    socklen_t un_len;
    int rc = unix_address(addr, len, &un, &un_len, HP_FOLLOW);

    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return rc == 0 ? REAL(connect)(fd, (struct sockaddr *)&un, un_len)
                   : REAL(connect)(fd, addr, len);
}

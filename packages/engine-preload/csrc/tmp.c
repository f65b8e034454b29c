/* The mkstemp family: libc fills in the template and opens it internally, so the template is
 * translated here and the generated name copied back into the caller's guest template. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "preload.h"

/* Host template for the guest template `tmpl` whose last `suffix` bytes follow the XXXXXX: 0 or
 * -errno. */
static int host_template(const char *tmpl, int suffix, char *host)
{
    char buf[PATH_MAX];
    size_t len = strlen(tmpl), hlen;
    const char *p;

    if (suffix < 0 || len < 6 + (size_t)suffix)
        return -EINVAL;
    p = hp_path(AT_FDCWD, tmpl, HP_NOFAST | HP_WRITE, buf);
    if (!p)
        return -errno;
    hlen = strlen(p);
    if (hlen < 6 + (size_t)suffix || memcmp(p + hlen - 6 - suffix, "XXXXXX", 6) != 0)
        return -EINVAL;
    memcpy(host, p, hlen + 1);
    return 0;
}

static void copy_back(char *tmpl, const char *host, int suffix)
{
    size_t len = strlen(tmpl), hlen = strlen(host);

    memcpy(tmpl + len - 6 - suffix, host + hlen - 6 - suffix, 6);
}

#define MKSTEMP(name, suffix, params, args)                                                         \
    WRAP int name params                                                                           \
    {                                                                                              \
        char host[PATH_MAX];                                                                       \
        int fd;                                                                                    \
        if (!hp_conf())                                                                            \
            return REAL(name) args;                                                                \
        int rc_ = host_template(tmpl, (suffix), host);                                             \
        if (rc_ < 0) {                                                                             \
            errno = -rc_;                                                                          \
            return -1;                                                                             \
        }                                                                                          \
        {                                                                                          \
            char *tmpl_ = tmpl;                                                                    \
            tmpl = host;                                                                           \
            fd = REAL(name) args;                                                                  \
            tmpl = tmpl_;                                                                          \
        }                                                                                          \
        if (fd >= 0)                                                                               \
            copy_back(tmpl, host, (suffix));                                                       \
        return fd;                                                                                 \
    }

MKSTEMP(mkstemp, 0, (char *tmpl), (tmpl))
MKSTEMP(mkostemp, 0, (char *tmpl, int flags), (tmpl, flags))
MKSTEMP(mkstemps, suffixlen, (char *tmpl, int suffixlen), (tmpl, suffixlen))
MKSTEMP(mkostemps, suffixlen, (char *tmpl, int suffixlen, int flags), (tmpl, suffixlen, flags))
#ifdef __GLIBC__
MKSTEMP(mkstemp64, 0, (char *tmpl), (tmpl))
MKSTEMP(mkostemp64, 0, (char *tmpl, int flags), (tmpl, flags))
MKSTEMP(mkstemps64, suffixlen, (char *tmpl, int suffixlen), (tmpl, suffixlen))
MKSTEMP(mkostemps64, suffixlen, (char *tmpl, int suffixlen, int flags), (tmpl, suffixlen, flags))
#endif

WRAP char *mkdtemp(char *tmpl)
{
    char host[PATH_MAX];
    int rc;

    if (!hp_conf())
        return REAL(mkdtemp)(tmpl);
    rc = host_template(tmpl, 0, host);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    if (!REAL(mkdtemp)(host))
        return NULL;
    copy_back(tmpl, host, 0);
    return tmpl;
}

/* procmagic: see procmagic.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "procmagic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#define GP_MAGIC_MAX 8

enum magic { M_NONE, M_ROOT, M_LINK };

static const char *digits(const char *p)
{
    const char *q = p;

    while (*q >= '0' && *q <= '9')
        q++;
    return q > p ? q : NULL;
}

/* Parse "/proc/<pid>[/task/<tid>]/<root|cwd|fd/N>" at the start of host: its kind, the length
 * of that prefix (the link's own path) in *len. */
static enum magic parse(const char *host, size_t *len)
{
    const char *p;

    if (strncmp(host, "/proc/", 6) != 0)
        return M_NONE;
    p = host + 6;
    if (strncmp(p, "self/", 5) == 0)
        p += 4;
    else if (strncmp(p, "thread-self/", 12) == 0)
        p += 11;
    else if (!(p = digits(p)))
        return M_NONE;
    if (strncmp(p, "/task/", 6) == 0 && !(p = digits(p + 6)))
        return M_NONE;
    if (*p++ != '/')
        return M_NONE;
    if (strncmp(p, "root", 4) == 0 && (p[4] == '/' || p[4] == '\0')) {
        *len = (size_t)(p + 4 - host);
        return M_ROOT;
    }
    if (strncmp(p, "cwd", 3) == 0 && (p[3] == '/' || p[3] == '\0')) {
        *len = (size_t)(p + 3 - host);
        return M_LINK;
    }
    if (strncmp(p, "fd/", 3) == 0 && (p = digits(p + 3)) && (*p == '/' || *p == '\0')) {
        *len = (size_t)(p - host);
        return M_LINK;
    }
    return M_NONE;
}

/* The guest directory a cwd or fd/N link points at: 0, or 1 when it is none inside the guest. */
static int link_base(const struct gp_context *ctx, const char *host, size_t len, char *base, size_t size)
{
    char link[PATH_MAX], target[PATH_MAX];
    ssize_t n;

    if (len >= sizeof(link))
        return 1;
    memcpy(link, host, len);
    link[len] = '\0';
    n = readlinkat(AT_FDCWD, link, target, sizeof(target) - 1);
    if (n <= 0 || target[0] != '/')
        return 1; /* gone, or "pipe:[42]", "anon_inode:...": not a directory walk */
    target[n] = '\0';
    if (n > 10 && strcmp(target + n - 10, " (deleted)") == 0)
        return 1;
    return gp_to_guest(ctx, target, base, size) == 0 ? 0 : 1;
}

/* Whether gp_proc_magic has anything to do for path (its first step, below, the same test). */
static bool is_magic(const char *path, int flags)
{
    size_t len = 0;
    enum magic kind = parse(path, &len);

    return kind != M_NONE && (path[len] != '\0' || (kind != M_LINK && (flags & GP_FOLLOW_LAST)));
}

/* gp_proc_magic's steps through the magic links: apart (noinline), so that the common case, a
 * path with none, has no buffers in its frame (each stack page touched is a page fault in a new
 * process). */
static __attribute__((noinline)) int follow_magic(const struct gp_context *ctx, const char *host, int flags,
                                                  char *out, size_t out_size)
{
    char cur[PATH_MAX], guest[PATH_MAX];
    int rc = 1;

    strcpy(cur, host);
    for (int i = 0; i < GP_MAGIC_MAX; i++) {
        size_t len = 0, blen, tlen;
        enum magic kind = parse(cur, &len);
        const char *tail = cur + len;

        if (kind == M_NONE || (*tail == '\0' && (kind == M_LINK || !(flags & GP_FOLLOW_LAST))))
            return rc;
        if (kind == M_ROOT) {
            strcpy(guest, "/");
        } else if (link_base(ctx, cur, len, guest, sizeof(guest)) != 0) {
            return rc;
        }
        blen = strlen(guest);
        tlen = strlen(tail);
        if (blen + tlen + 1 > sizeof(guest))
            return -ENAMETOOLONG;
        memcpy(guest + (blen == 1 ? 0 : blen), tail, tlen + 1);
        if (guest[0] == '\0')
            strcpy(guest, "/");
        rc = gp_to_host(ctx, guest, flags, out, out_size);
        if (rc < 0)
            return rc;
        if (strlen(out) >= sizeof(cur))
            return -ENAMETOOLONG;
        strcpy(cur, out);
    }
    return -ELOOP;
}

int gp_proc_magic(const struct gp_context *ctx, const char *host, int flags, char *out, size_t out_size)
{
    if (strlen(host) >= PATH_MAX || !is_magic(host, flags))
        return 1;
    return follow_magic(ctx, host, flags, out, out_size);
}

/* guestpath: guest <-> host path translation. See guestpath.h for the semantics.
 * Over 500 lines: one resolver; both directions, the parent walk and rename checks share its
 * walk (symlinks, "..", bindings, /proc magic links) and its path representation. */
#define _GNU_SOURCE
#include "guestpath.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A resolved guest path is kept as "" for "/" and "/a/b" otherwise, so that appending
 * "/name" never needs a special case. */

/* Lexically normalise an absolute path: drop "", "." and repeated "/", apply ".." (clamped
 * at "/"). Writes "/" or "/a/b" to out. */
static int normalise_abs(const char *in, char *out, size_t out_size, size_t *out_len)
{
    size_t len = 0;
    const char *p = in;

    if (in[0] != '/')
        return -EINVAL;
    if (out_size < 2)
        return -ENAMETOOLONG;
    while (*p) {
        const char *name;
        size_t n;

        while (*p == '/')
            p++;
        name = p;
        while (*p && *p != '/')
            p++;
        n = (size_t)(p - name);
        if (n == 0 || (n == 1 && name[0] == '.'))
            continue;
        if (n == 2 && name[0] == '.' && name[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the "/" before the dropped name */
            continue;
        }
        if (len + 1 + n + 1 > out_size)
            return -ENAMETOOLONG;
        out[len++] = '/';
        memcpy(out + len, name, n);
        len += n;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
    if (out_len)
        *out_len = len;
    return 0;
}

/* Host prefix length to copy: "/" contributes nothing (its children start with "/"). */
static size_t prefix_len(const char *prefix, size_t len)
{
    return (len == 1 && prefix[0] == '/') ? 0 : len;
}

/* The binding that covers guest[0..len) and was added last (mount order: a later mount at or
 * above a path hides the earlier ones there), or NULL. */
static const struct gp_binding *binding_for_guest(const struct gp_context *ctx, const char *guest,
                                                  size_t len)
{
    for (size_t i = ctx->n_bindings; i-- > 0;) {
        const struct gp_binding *b = &ctx->bindings[i];

        if (b->guest_len > len || memcmp(b->guest, guest, b->guest_len) != 0)
            continue;
        if (guest[b->guest_len] != '/' && b->guest_len != len)
            continue;
        return b;
    }
    return NULL;
}

/* Map a resolved guest path ("" for "/", else "/a/b") of length len to the host. */
static int map_resolved(const struct gp_context *ctx, const char *guest, size_t len, char *out,
                        size_t out_size)
{
    const struct gp_binding *b = binding_for_guest(ctx, guest, len);
    const char *prefix = b ? b->host : ctx->root;
    size_t plen = b ? prefix_len(b->host, b->host_len) : prefix_len(ctx->root, ctx->root_len);
    const char *rest = b ? guest + b->guest_len : guest;
    size_t rlen = b ? len - b->guest_len : len;

    if (plen + rlen == 0) {
        if (out_size < 2)
            return -ENAMETOOLONG;
        memcpy(out, "/", 2);
        return 0;
    }
    if (plen + rlen + 1 > out_size)
        return -ENAMETOOLONG;
    memcpy(out, prefix, plen);
    memcpy(out + plen, rest, rlen);
    out[plen + rlen] = '\0';
    return 0;
}

/* Whether guest[0..len) is a strict ancestor of some binding's guest prefix: such a path counts
 * as a directory in the walk even where the rootfs lacks it (like a mount point a runtime creates). */
bool gp_binding_below(const struct gp_context *ctx, const char *guest, size_t len)
{
    for (size_t i = 0; i < ctx->n_bindings; i++) {
        const struct gp_binding *b = &ctx->bindings[i];

        if (b->guest_len > len && b->guest[len] == '/' && memcmp(b->guest, guest, len) == 0)
            return true;
    }
    return false;
}

struct walk_result {
    size_t len;         /* of the resolved guest path in res */
    bool missing_slash; /* the final component is missing and was followed by "/" */
    mode_t mode;        /* the final component's type as the walk saw it (lstat); 0 unseen */
};

/* Follow the symlink at host path `host`: the new pending path is its target followed by the
 * unprocessed rest of the old one, written to `spare`. */
static int splice_link(const char *host, char *spare, const char *rest, size_t rest_len, size_t *new_len)
{
    ssize_t n = readlinkat(AT_FDCWD, host, spare, PATH_MAX);

    if (n < 0)
        return -errno;
    if (n == 0)
        return -ENOENT;
    if ((size_t)n + rest_len + 1 > PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(spare + n, rest, rest_len + 1);
    *new_len = (size_t)n + rest_len;
    return 0;
}

/* The host's /proc/self or /proc/thread-self, which gp_set_self redirects to the traced process. */
static int self_link_target(const struct gp_context *ctx, const char *host, char *out, size_t size)
{
    int n;

    if (ctx->self_pid <= 0 || strncmp(host, "/proc/", 6) != 0)
        return 0;
    if (strcmp(host + 6, "self") == 0)
        n = snprintf(out, size, "%ld", ctx->self_pid);
    else if (strcmp(host + 6, "thread-self") == 0)
        n = snprintf(out, size, "%ld/task/%ld", ctx->self_pid, ctx->self_tid);
    else
        return 0;
    return (n > 0 && (size_t)n < size) ? n : -ENAMETOOLONG;
}

static const char *skip_digits(const char *p)
{
    const char *start = p;

    while (*p >= '0' && *p <= '9')
        p++;
    return p > start ? p : NULL;
}

/* Whether host is one of the kernel's magic links: /proc/<pid>[/task/<tid>]/{cwd,exe,root,fd/N,ns/X}. */
static bool proc_magic_link(const struct gp_context *ctx, const char *host)
{
    const char *p;

    if (ctx->self_pid <= 0 || strncmp(host, "/proc/", 6) != 0 || !(p = skip_digits(host + 6)))
        return false;
    if (strncmp(p, "/task/", 6) == 0 && !(p = skip_digits(p + 6)))
        return false;
    if (strcmp(p, "/cwd") == 0 || strcmp(p, "/exe") == 0 || strcmp(p, "/root") == 0)
        return true;
    if (strncmp(p, "/fd/", 4) == 0)
        return skip_digits(p + 4) && *skip_digits(p + 4) == '\0';
    return strncmp(p, "/ns/", 4) == 0 && p[4] && !strchr(p + 4, '/');
}

/* Where a walk stands: the path still to walk (guest_path itself until a symlink is followed, not a
 * copy, then one of bufs), how far, the resolved length, the symlinks followed. Each stack page a
 * walk touches is a page fault in a new process: the two buffers for symlinks are only in the
 * frame of walk_links, made when the first one is met. */
struct walk_state {
    const char *pend;
    size_t plen, pos, rlen, saved; /* saved: rlen before the last component */
    int links;
    char (*bufs)[PATH_MAX]; /* NULL until a symlink is followed */
    int spare;              /* the one of bufs that pend is not */
};

#define WALK_LINK 1 /* walk_steps met a symlink to follow without bufs */

/* Follow the symlink at `host` (the last component resolved): the rest of the path after its
 * target, in the spare buffer, is what is left to walk. */
static int follow(const struct gp_context *ctx, struct walk_state *s, const char *host, char *res)
{
    char *spare = s->bufs[s->spare];
    size_t rest = s->plen - s->pos, new_len = 0;
    int rc = self_link_target(ctx, host, spare, PATH_MAX);

    if (rc > 0) {
        if ((size_t)rc + rest + 1 > PATH_MAX)
            return -ENAMETOOLONG;
        memcpy(spare + rc, s->pend + s->pos, rest + 1);
        new_len = (size_t)rc + rest;
    } else if (rc == 0) {
        rc = splice_link(host, spare, s->pend + s->pos, rest, &new_len);
    }
    if (rc < 0)
        return rc;
    s->pend = spare;
    s->spare ^= 1;
    s->plen = new_len;
    s->pos = 0;
    s->rlen = spare[0] == '/' ? 0 : s->saved;
    res[s->rlen] = '\0';
    return 0;
}

/* Resolve the rest of s into res, component by component (host: PATH_MAX bytes for each one's host
 * path); 0, -errno or WALK_LINK. */
static int walk_steps(const struct gp_context *ctx, struct walk_state *s, int flags, char *res, char *host,
                      struct walk_result *wr)
{
    for (;;) {
        const char *pend = s->pend;
        size_t start, n, after;
        bool last, slash;
        struct stat st;
        int rc;

        while (pend[s->pos] == '/')
            s->pos++;
        if (pend[s->pos] == '\0')
            break;
        start = s->pos;
        while (pend[s->pos] && pend[s->pos] != '/')
            s->pos++;
        n = s->pos - start;
        after = s->pos;
        while (pend[after] == '/')
            after++;
        last = pend[after] == '\0';
        slash = last && after > s->pos;

        if (n == 1 && pend[start] == '.')
            continue;
        if (n == 2 && pend[start] == '.' && pend[start + 1] == '.') {
            wr->mode = 0; /* back to a directory not looked at last */
            while (s->rlen > 0 && res[s->rlen - 1] != '/')
                s->rlen--;
            if (s->rlen > 0)
                s->rlen--;
            res[s->rlen] = '\0';
            continue;
        }
        if (s->rlen + 1 + n + 1 > PATH_MAX)
            return -ENAMETOOLONG;
        s->saved = s->rlen;
        res[s->rlen++] = '/';
        memcpy(res + s->rlen, pend + start, n);
        s->rlen += n;
        res[s->rlen] = '\0';

        rc = map_resolved(ctx, res, s->rlen, host, PATH_MAX);
        if (rc < 0)
            return rc;
        wr->mode = 0;
        if (fstatat(AT_FDCWD, host, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT && last) {
                wr->missing_slash = slash;
                break;
            }
            if (errno == ENOENT && gp_binding_below(ctx, res, s->rlen))
                continue;
            return -errno;
        }
        if (S_ISLNK(st.st_mode) && (!last || slash || (flags & GP_FOLLOW_LAST))) {
            if (++s->links > GP_MAX_LINKS)
                return -ELOOP;
            if (proc_magic_link(ctx, host)) {
                /* the kernel follows it: keep the link and the rest as they are */
                if (s->rlen + (s->plen - s->pos) + 1 > PATH_MAX)
                    return -ENAMETOOLONG;
                memcpy(res + s->rlen, pend + s->pos, s->plen - s->pos + 1);
                s->rlen += s->plen - s->pos;
                break;
            }
            if (!s->bufs)
                return WALK_LINK;
            rc = follow(ctx, s, host, res);
            if (rc < 0)
                return rc;
            continue;
        }
        if (!S_ISDIR(st.st_mode) && (!last || slash))
            return -ENOTDIR;
        wr->mode = st.st_mode;
    }
    wr->len = s->rlen;
    return 0;
}

/* The rest of a walk once it meets a symlink: with the buffers to splice paths in. */
static __attribute__((noinline)) int walk_links(const struct gp_context *ctx, struct walk_state *s, int flags,
                                                char *res, char *host, struct walk_result *wr)
{
    char bufs[2][PATH_MAX];
    int rc;

    s->bufs = bufs;
    s->spare = 0;
    rc = follow(ctx, s, host, res);
    return rc < 0 ? rc : walk_steps(ctx, s, flags, res, host, wr);
}

/* Resolve guest_path into res (PATH_MAX bytes), component by component. */
static int walk(const struct gp_context *ctx, const char *guest_path, int flags, char *res,
                struct walk_result *wr)
{
    char host[PATH_MAX];
    struct walk_state s = {.pend = guest_path, .plen = strlen(guest_path)};
    int rc;

    wr->missing_slash = false;
    wr->mode = 0;
    if (s.plen == 0)
        return -ENOENT;
    if (s.plen >= PATH_MAX)
        return -ENAMETOOLONG;
    if (guest_path[0] != '/') {
        s.rlen = prefix_len(ctx->cwd, ctx->cwd_len);
        memcpy(res, ctx->cwd, s.rlen);
    }
    res[s.rlen] = '\0';
    rc = walk_steps(ctx, &s, flags, res, host, wr);
    return rc == WALK_LINK ? walk_links(ctx, &s, flags, res, host, wr) : rc;
}

static int finish(const char *path, size_t len, bool slash, char *out, size_t out_size)
{
    size_t need = len + (slash ? 1 : 0);

    if (len == 0) { /* "/" */
        path = "/";
        len = 1;
        need = 1;
    }
    if (need + 1 > out_size)
        return -ENAMETOOLONG;
    memmove(out, path, len);
    if (slash && need > len)
        out[len] = '/';
    out[need] = '\0';
    return 0;
}

/* GP_PARENT: the final name of a guest path as the kernel splits it (trailing "/" are no name). */
struct last_name {
    size_t start; /* offset of the final name: the directory part is guest_path[0..start) */
    size_t len;
    bool slash;   /* a "/" follows it */
};

/* false for a path of "/" only, which has no final name. */
static bool split_last(const char *path, struct last_name *ln)
{
    size_t end = strlen(path), start;

    ln->slash = false;
    while (end > 0 && path[end - 1] == '/') {
        end--;
        ln->slash = true;
    }
    if (end == 0)
        return false;
    start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    ln->start = start;
    ln->len = end - start;
    return true;
}

static bool is_dots(const char *name, size_t len)
{
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

/* Append n bytes of s to out (holding *len bytes), keeping it terminated. */
static int path_append(char *out, size_t out_size, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > out_size)
        return -ENAMETOOLONG;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
    return 0;
}

/* GP_NO_MOUNT: the error of removing or moving the mount point at host path `host`. */
static int mount_point_error(const char *host, int flags)
{
    struct stat st;

    if ((flags & (GP_RMDIR | GP_UNLINK)) && fstatat(AT_FDCWD, host, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if ((flags & GP_RMDIR) && !S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if ((flags & GP_UNLINK) && S_ISDIR(st.st_mode))
            return -EISDIR;
    }
    return -EBUSY;
}

/* GP_PARENT: resolve the directory part of guest_path (every link followed) into res, then append
 * "/" and a normal final name to it (*appended true), or leave a final "." or ".." to the caller. */
static int walk_parent(const struct gp_context *ctx, const char *guest_path, int flags,
                       const struct last_name *ln, char *res, size_t *rlen, bool *appended)
{
    char dir[PATH_MAX];
    struct walk_result wr;
    const char *name = guest_path + ln->start;
    int rc;

    if (ln->start == 0) {
        memcpy(dir, ".", 2);
    } else {
        memcpy(dir, guest_path, ln->start);
        dir[ln->start] = '\0';
    }
    rc = walk(ctx, dir, GP_FOLLOW_LAST, res, &wr);
    if (rc < 0)
        return rc;
    if (wr.missing_slash && !gp_binding_below(ctx, res, wr.len))
        return -ENOENT; /* the directory part does not exist */
    *rlen = wr.len;
    *appended = !is_dots(name, ln->len);
    if (!*appended)
        return 0;
    rc = path_append(res, PATH_MAX, rlen, "/", 1);
    if (rc == 0)
        rc = path_append(res, PATH_MAX, rlen, name, ln->len);
    if (rc == 0 && (flags & GP_NO_MOUNT)) {
        const struct gp_binding *b = binding_for_guest(ctx, res, *rlen);

        if (b && b->guest_len == *rlen)
            rc = mount_point_error(b->host, flags);
    }
    return rc;
}

/* GP_PARENT for gp_canonical (mapped = false: out gets the guest path) and gp_to_host (true). */
static int parent_path(const struct gp_context *ctx, const char *guest_path, int flags, bool mapped,
                       char *out, size_t out_size)
{
    char res[PATH_MAX], host[PATH_MAX], guest_path_root[3];
    struct last_name ln;
    size_t len, rlen = 0;
    bool appended = false;
    int rc;

    if (guest_path[0] == '\0')
        return -ENOENT;
    if (strlen(guest_path) >= PATH_MAX)
        return -ENAMETOOLONG;
    if (!split_last(guest_path, &ln)) { /* "/": root + "/.", refused as Linux refuses "/" */
        if ((flags & GP_NO_MOUNT) && (flags & GP_RMDIR))
            return -EBUSY; /* rmdir("/."), unlike rmdir("/"), is EINVAL */
        memcpy(guest_path_root, "/.", 3);
        guest_path = guest_path_root;
        split_last(guest_path, &ln);
    }
    rc = walk_parent(ctx, guest_path, flags, &ln, res, &rlen, &appended);
    if (rc < 0)
        return rc;
    if (mapped) {
        rc = map_resolved(ctx, res, rlen, host, sizeof(host));
        if (rc < 0)
            return rc;
    } else {
        memcpy(host, rlen ? res : "/", rlen ? rlen + 1 : 2);
    }
    len = strlen(host);
    if (len == 1 && host[0] == '/')
        len = 0; /* "/" + "/.." */
    if (len + 1 > out_size)
        return -ENAMETOOLONG;
    memcpy(out, host, len);
    out[len] = '\0';
    if (!appended) {
        rc = path_append(out, out_size, &len, "/", 1);
        if (rc == 0)
            rc = path_append(out, out_size, &len, guest_path + ln.start, ln.len);
    }
    if (rc == 0 && ln.slash)
        rc = path_append(out, out_size, &len, "/", 1);
    return rc;
}

/* Whether out (of out_size bytes) can hold walk's result itself (PATH_MAX bytes, apart from the
 * path walked): a buffer less on the stack, where each page touched is a page fault in a new
 * process. */
static bool walk_in_place(const char *guest_path, const char *out, size_t out_size)
{
    return out_size >= PATH_MAX && (out + out_size <= guest_path || guest_path + strlen(guest_path) < out);
}

/* gp_canonical's walk with a buffer of its own for the result (noinline: not in the frame of the
 * common case). */
static __attribute__((noinline)) int canonical_copied(const struct gp_context *ctx, const char *guest_path,
                                                      int flags, char *out, size_t out_size)
{
    char res[PATH_MAX];
    struct walk_result wr;
    int rc = walk(ctx, guest_path, flags, res, &wr);

    return rc < 0 ? rc : finish(res, wr.len, wr.missing_slash, out, out_size);
}

int gp_canonical(const struct gp_context *ctx, const char *guest_path, int flags, char *out,
                 size_t out_size)
{
    struct walk_result wr;
    int rc;

    if (!ctx || !guest_path || !out)
        return -EFAULT;
    if (flags & GP_PARENT)
        return parent_path(ctx, guest_path, flags, false, out, out_size);
    if (!walk_in_place(guest_path, out, out_size))
        return canonical_copied(ctx, guest_path, flags, out, out_size);
    rc = walk(ctx, guest_path, flags, out, &wr);
    if (rc < 0)
        return rc;
    return finish(out, wr.len, wr.missing_slash, out, out_size); /* (finish moves: in place too) */
}

int gp_canonical_dir(const struct gp_context *ctx, const char *guest_path, char *out, size_t out_size)
{
    struct walk_result wr;
    int rc;

    if (!ctx || !guest_path || !out)
        return -EFAULT;
    if (!walk_in_place(guest_path, out, out_size))
        return -EINVAL;
    rc = walk(ctx, guest_path, GP_FOLLOW_LAST, out, &wr);
    if (rc == 0)
        rc = finish(out, wr.len, wr.missing_slash, out, out_size);
    if (rc < 0)
        return rc;
    if (wr.mode == 0)
        return 1; /* missing, or not looked at ("/", a kernel's magic link, after ".."): the caller looks */
    return S_ISDIR(wr.mode) ? 0 : -ENOTDIR;
}

int gp_to_host(const struct gp_context *ctx, const char *guest_path, int flags, char *out,
               size_t out_size)
{
    char res[PATH_MAX], host[PATH_MAX];
    struct walk_result wr;
    int rc;

    if (!ctx || !guest_path || !out)
        return -EFAULT;
    if (flags & GP_PARENT)
        return parent_path(ctx, guest_path, flags, true, out, out_size);
    rc = walk(ctx, guest_path, flags, res, &wr);
    if (rc < 0)
        return rc;
    rc = map_resolved(ctx, res, wr.len, host, sizeof(host));
    if (rc < 0)
        return rc;
    return finish(host, strlen(host), wr.missing_slash, out, out_size);
}

int gp_map_canonical(const struct gp_context *ctx, const char *guest_canonical, char *out,
                     size_t out_size)
{
    char norm[PATH_MAX];
    size_t len;
    int rc;

    if (!ctx || !guest_canonical || !out)
        return -EFAULT;
    rc = normalise_abs(guest_canonical, norm, sizeof(norm), &len);
    if (rc < 0)
        return rc;
    if (len == 1)
        len = 0;
    return map_resolved(ctx, norm, len, out, out_size);
}

/* A canonical guest path as gp_check_move takes it: its length without a trailing "/" (len), whether
 * it had one (slash), the start of its final name (last). */
struct move_name {
    const char *path;
    size_t len, last;
    bool slash;
};

static void move_name_init(struct move_name *m, const char *path)
{
    m->path = path;
    m->len = strlen(path);
    m->slash = m->len > 1 && path[m->len - 1] == '/';
    while (m->len > 1 && path[m->len - 1] == '/')
        m->len--;
    m->last = m->len;
    while (m->last > 0 && path[m->last - 1] != '/')
        m->last--;
}

/* The binding (NULL: the rootfs) that holds the guest path's first len bytes ("" is "/"). */
static const struct gp_binding *mount_of(const struct gp_context *ctx, const char *path, size_t len)
{
    return len ? binding_for_guest(ctx, path, len) : NULL;
}

/* The mount of the name's directory. */
static const struct gp_binding *parent_mount(const struct gp_context *ctx, const struct move_name *m)
{
    return mount_of(ctx, m->path, m->last ? m->last - 1 : 0);
}

static bool is_mount_point(const struct gp_context *ctx, const struct move_name *m)
{
    const struct gp_binding *b = mount_of(ctx, m->path, m->len);

    return b && b->guest_len == m->len;
}

/* lstat of the name (without its trailing "/") on the host: 0 or -errno. */
static int move_lstat(const struct gp_context *ctx, const struct move_name *m, struct stat *st)
{
    char guest[PATH_MAX], host[PATH_MAX];
    int rc;

    if (m->len >= sizeof(guest))
        return -ENAMETOOLONG;
    memcpy(guest, m->path, m->len);
    guest[m->len] = '\0';
    rc = gp_map_canonical(ctx, guest, host, sizeof(host));
    if (rc < 0)
        return rc;
    return fstatat(AT_FDCWD, host, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

/* Whether a is a strict ancestor of b. */
static bool below(const struct move_name *a, const struct move_name *b)
{
    size_t alen = a->len == 1 ? 0 : a->len; /* "/" */

    return b->len > alen && memcmp(a->path, b->path, alen) == 0 && b->path[alen] == '/';
}

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* rename with a mount point among its names: what the kernel checks before the mount (EBUSY). */
static int rename_mount_point(const struct gp_context *ctx, const struct move_name *o,
                              const struct move_name *n, unsigned flags)
{
    bool exchange = flags & RENAME_EXCHANGE;
    struct stat ost, nst;
    int rc = move_lstat(ctx, o, &ost), nrc;

    if (rc < 0)
        return rc;
    nrc = move_lstat(ctx, n, &nst);
    if (nrc < 0 && nrc != -ENOENT)
        return nrc;
    if ((flags & RENAME_NOREPLACE) && nrc == 0)
        return -EEXIST;
    if (exchange && nrc < 0)
        return -ENOENT;
    if (exchange && !S_ISDIR(nst.st_mode) && n->slash)
        return -ENOTDIR;
    if (!S_ISDIR(ost.st_mode) && (o->slash || (!exchange && n->slash)))
        return -ENOTDIR;
    if (below(o, n))
        return -EINVAL;
    if (!exchange && below(n, o))
        return -ENOTEMPTY;
    if (o->len == n->len && memcmp(o->path, n->path, o->len) == 0)
        return GP_SAME;
    if (nrc == 0 && !exchange && S_ISDIR(ost.st_mode) != S_ISDIR(nst.st_mode))
        return S_ISDIR(ost.st_mode) ? -ENOTDIR : -EISDIR;
    return -EBUSY;
}

int gp_check_move(const struct gp_context *ctx, const char *old, const char *new, int kind, unsigned flags)
{
    struct move_name o, n;
    struct stat st;
    bool readonly, old_fd;

    if (!ctx || !old || !new)
        return -EFAULT;
    readonly = kind & GP_MOVE_READONLY;
    old_fd = kind & GP_MOVE_OLD_FD;
    kind &= ~(GP_MOVE_READONLY | GP_MOVE_OLD_FD);
    move_name_init(&o, old);
    move_name_init(&n, new);
    if (kind == GP_MOVE_LINK) {
        /* the kernel: old's lookup (ENOENT), new's creation (EEXIST, ENOENT for "new/"), the mount's
         * write access (EROFS), then EXDEV */
        if (n.slash || is_dots(new + n.last, n.len - n.last) || (!old_fd && move_lstat(ctx, &o, &st) < 0) ||
            move_lstat(ctx, &n, &st) == 0)
            return 0;
        if (readonly)
            return -EROFS;
        return mount_of(ctx, o.path, o.len == 1 ? 0 : o.len) == parent_mount(ctx, &n) ? 0 : -EXDEV;
    }
    if (parent_mount(ctx, &o) != parent_mount(ctx, &n))
        return -EXDEV;
    if (is_dots(old + o.last, o.len - o.last) || is_dots(new + n.last, n.len - n.last))
        return 0; /* EBUSY from the kernel, on the same mount */
    if (readonly)
        return -EROFS; /* the mount's write access, before the names are looked up */
    if (!is_mount_point(ctx, &o) && !is_mount_point(ctx, &n))
        return 0;
    return rename_mount_point(ctx, &o, &n, flags);
}

/* Length of the host prefix `prefix` matched by the normalised host path h, or -1. */
static long host_match(const char *prefix, size_t plen, const char *h, size_t hlen)
{
    size_t eff = prefix_len(prefix, plen);

    if (eff > hlen || memcmp(prefix, h, eff) != 0)
        return -1;
    if (eff < hlen && h[eff] != '/')
        return -1;
    return (long)eff;
}

int gp_to_guest(const struct gp_context *ctx, const char *host_path, char *out, size_t out_size)
{
    char h[PATH_MAX];
    size_t hlen, glen, rest_len;
    const struct gp_binding *best = NULL;
    const char *gprefix, *rest;
    long best_len;
    int rc;

    if (!ctx || !host_path || !out)
        return -EFAULT;
    rc = normalise_abs(host_path, h, sizeof(h), &hlen);
    if (rc < 0)
        return rc;
    if (hlen == 1)
        hlen = 0; /* "/" as "" like a resolved path */
    best_len = host_match(ctx->root, ctx->root_len, h, hlen);
    for (size_t i = 0; i < ctx->n_bindings; i++) {
        const struct gp_binding *b = &ctx->bindings[i];
        long m = host_match(b->host, b->host_len, h, hlen);

        if (m >= 0 && m >= best_len) { /* a tie: the later binding (on top) wins */
            best = b;
            best_len = m;
        }
    }
    if (best_len < 0) {
        if (hlen == 0)
            hlen = 1; /* h still holds "/" */
        if (hlen + 1 > out_size)
            return -ENAMETOOLONG;
        memcpy(out, h, hlen + 1);
        return GP_OUTSIDE;
    }
    gprefix = best ? best->guest : "";
    glen = best ? best->guest_len : 0;
    rest = h + best_len;
    rest_len = hlen - (size_t)best_len;
    if (glen + rest_len == 0)
        return finish("", 0, false, out, out_size);
    if (glen + rest_len + 1 > out_size)
        return -ENAMETOOLONG;
    memcpy(out, gprefix, glen);
    memcpy(out + glen, rest, rest_len);
    out[glen + rest_len] = '\0';
    return 0;
}

int gp_context_init(struct gp_context *ctx, const char *host_root)
{
    struct stat st;

    if (!ctx || !host_root)
        return -EFAULT;
    memset(ctx, 0, offsetof(struct gp_context, root));
    ctx->root[0] = ctx->cwd[0] = '\0';
    if (host_root[0] == '\0')
        return -ENOENT;
    if (strlen(host_root) >= PATH_MAX)
        return -ENAMETOOLONG;
    if (!realpath(host_root, ctx->root))
        return -errno;
    if (stat(ctx->root, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    ctx->root_len = strlen(ctx->root);
    memcpy(ctx->cwd, "/", 2);
    ctx->cwd_len = 1;
    return 0;
}

void gp_context_destroy(struct gp_context *ctx)
{
    if (!ctx)
        return;
    for (size_t i = 0; i < ctx->n_bindings; i++) {
        free(ctx->bindings[i].guest);
        free(ctx->bindings[i].host);
    }
    free(ctx->bindings);
    ctx->bindings = NULL;
    ctx->n_bindings = 0;
    ctx->cap_bindings = 0;
}

int gp_add_binding(struct gp_context *ctx, const char *guest, const char *host)
{
    char gnorm[PATH_MAX], hreal[PATH_MAX];
    size_t glen;
    char *g, *h;
    int rc;

    if (!ctx || !guest || !host)
        return -EFAULT;
    if (guest[0] != '/' || host[0] != '/')
        return -EINVAL;
    if (strlen(guest) >= PATH_MAX || strlen(host) >= PATH_MAX)
        return -ENAMETOOLONG;
    rc = normalise_abs(guest, gnorm, sizeof(gnorm), &glen);
    if (rc < 0)
        return rc;
    if (glen == 1)
        return -EINVAL; /* "/" is the root, set by gp_context_init */
    if (!realpath(host, hreal))
        return -errno;
    g = strdup(gnorm);
    h = strdup(hreal);
    if (!g || !h) {
        free(g);
        free(h);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ctx->n_bindings; i++) {
        struct gp_binding *b = &ctx->bindings[i];

        if (b->guest_len == glen && memcmp(b->guest, g, glen) == 0) {
            /* the new one is on top: drop the old, append the new (mount order) */
            free(b->guest);
            free(b->host);
            memmove(b, b + 1, (ctx->n_bindings - i - 1) * sizeof(*b));
            ctx->n_bindings--;
            break;
        }
    }
    if (ctx->n_bindings == ctx->cap_bindings) {
        size_t cap = ctx->cap_bindings ? ctx->cap_bindings * 2 : 8;
        struct gp_binding *nb = realloc(ctx->bindings, cap * sizeof(*nb));

        if (!nb) {
            free(g);
            free(h);
            return -ENOMEM;
        }
        ctx->bindings = nb;
        ctx->cap_bindings = cap;
    }
    ctx->bindings[ctx->n_bindings++] = (struct gp_binding){
        .guest = g, .guest_len = glen, .host = h, .host_len = strlen(h)};
    return 0;
}

int gp_set_self(struct gp_context *ctx, long pid, long tid)
{
    if (!ctx)
        return -EFAULT;
    if (pid < 0 || tid < 0)
        return -EINVAL;
    ctx->self_pid = pid;
    ctx->self_tid = tid ? tid : pid;
    return 0;
}

int gp_set_cwd(struct gp_context *ctx, const char *guest_cwd)
{
    char norm[PATH_MAX];
    size_t len;
    int rc;

    if (!ctx || !guest_cwd)
        return -EFAULT;
    if (strlen(guest_cwd) >= PATH_MAX)
        return -ENAMETOOLONG;
    rc = normalise_abs(guest_cwd, norm, sizeof(norm), &len);
    if (rc < 0)
        return rc; /* ctx->cwd is left as it was */
    memcpy(ctx->cwd, norm, len + 1);
    ctx->cwd_len = len;
    return 0;
}

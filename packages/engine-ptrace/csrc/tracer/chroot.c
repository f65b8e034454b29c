/* chroot: chroot(2) inside the container, emulated (debootstrap, pbuilder, mock, build tools).
 *
 * The kernel would refuse it (no CAP_SYS_CHROOT) and would take the path as a host path anyway.
 * The tracer keeps a root per process instead: a path core context whose root is the new root's
 * host directory and whose bindings are the container's bindings that lie below the new root,
 * with the new root's guest path cut off their guest prefix. From then on every path of that
 * process (and of its children, across exec) is translated in it, as Linux resolves paths from
 * the process's root: "/" and ".." stop at the new root, absolute symlinks restart there, and the
 * container's /proc, /dev, /sys are not inside unless bound below the new root (as natively,
 * where they are mounts of the outer root). The cwd stays where it is (`chroot .` works; a cwd
 * outside the new root still resolves relative paths, as on Linux).
 * Rules as Linux: the caller must be root (emulated uid 0, i.e. CAP_SYS_CHROOT in the container),
 * the path must resolve to a directory the caller may search. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ROOTS 64 /* distinct new roots per run; more: ENOMEM (none is ever freed) */

struct gp_context *chroot_gp(struct tracer *t, pid_t tid)
{
    const struct proc *p = procs_find(&t->procs, tid);

    return p && p->root ? &p->root->gp : &t->gp;
}

/* The context for the container-level guest path `guest` (canonical, not "/"): found or made. */
static int root_for(struct tracer *t, const char *guest, struct chroot_root **out)
{
    size_t len = strlen(guest), n = 0;
    struct chroot_root *r;
    char host[PATH_MAX];
    int rc;

    for (r = t->roots; r; r = r->next, n++) {
        if (strcmp(r->guest, guest) == 0) {
            *out = r;
            return 0;
        }
    }
    if (n >= MAX_ROOTS)
        return -ENOMEM;
    rc = gp_map_canonical(&t->gp, guest, host, sizeof(host));
    if (rc < 0)
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->guest = strdup(guest);
    rc = r->guest ? gp_context_init(&r->gp, host) : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < t->gp.n_bindings; i++) {
        const struct gp_binding *b = &t->gp.bindings[i];

        if (b->guest_len > len && strncmp(b->guest, guest, len) == 0 && b->guest[len] == '/')
            rc = gp_add_binding(&r->gp, b->guest + len, b->host);
    }
    if (rc < 0) {
        if (r->guest)
            gp_context_destroy(&r->gp);
        free(r->guest);
        free(r);
        return rc;
    }
    r->next = t->roots;
    t->roots = r;
    *out = r;
    return 0;
}

int chroot_handle(struct tracer *t, struct stop *s)
{
    char guest[PATH_MAX], canon[PATH_MAX], host[PATH_MAX], full[PATH_MAX];
    const struct chroot_root *cur = s->proc->root;
    struct chroot_root *next = NULL;
    struct stat st;
    int rc = mem_read_string(s->tid, regs_arg(&s->regs, 0), guest, sizeof(guest));

    s->skip = true;
    if (rc < 0) {
        s->ret = rc == -ENAMETOOLONG ? -ENAMETOOLONG : -EFAULT;
        return 0;
    }
    if (!t->cfg.emulate_ids || s->proc->creds.euid != 0) {
        s->ret = -EPERM; /* no CAP_SYS_CHROOT: not the container's root */
        return 0;
    }
    if (guest[0] == '\0') {
        s->ret = -ENOENT;
        return 0;
    }
    rc = paths_translate(t, s->tid, guest, GP_FOLLOW_LAST, canon, host);
    if (rc == 1)
        rc = -ENOENT; /* relative to a cwd outside the root */
    if (rc == 0 && stat(host, &st) < 0)
        rc = -errno;
    if (rc == 0 && !S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    if (rc == 0 && faccessat(AT_FDCWD, host, X_OK, AT_EACCESS) < 0)
        rc = -errno;
    if (rc == 0) {
        /* the new root as a guest path of the container: the current root's, then canon in it */
        const char *base = cur ? cur->guest : "";
        size_t blen = strlen(base), clen = strcmp(canon, "/") == 0 ? 0 : strlen(canon);

        if (blen + clen + 1 > sizeof(full)) {
            rc = -ENAMETOOLONG;
        } else {
            memcpy(full, base, blen);
            memcpy(full + blen, canon, clen);
            full[blen + clen] = '\0';
            if (full[0] != '\0')
                rc = root_for(t, full, &next);
        }
    }
    if (rc == 0)
        s->proc->root = next; /* NULL: the container's own root again */
    s->ret = rc;
    return 0;
}

void chroot_destroy(struct tracer *t)
{
    while (t->roots) {
        struct chroot_root *r = t->roots;

        t->roots = r->next;
        gp_context_destroy(&r->gp);
        free(r->guest);
        free(r);
    }
}

/* procmagic: host paths that go through the kernel's per-process links under /proc.
 *
 * "/proc/<pid>/root", "/proc/<pid>/cwd" and "/proc/<pid>/fd/<n>" (also under task/<tid>/, and with
 * "self" or "thread-self" for the pid) are "magic" links: the kernel jumps to the object they
 * name, not to their text. For a program in a container, root is the host's "/" and a ".." after
 * cwd or fd/N climbs on the host, so a path through them leaves the rootfs. gp_proc_magic turns
 * such a host path into the one the container means: root is the guest root, cwd and fd/N the guest
 * directory their target maps back to (gp_to_guest), and the rest of the path is resolved from
 * there as a guest path (gp_to_host). A link that ends the path is left to the kernel (it opens the
 * object itself, which lies where it lies), except root when it is followed.
 *
 * Part of the path core (guestpath.h); used by the ptrace tracer on the host paths it computed
 * and by the preload library on paths under the host's own /proc, which it hands to the kernel.
 */
#ifndef HPCBOX_PROCMAGIC_H
#define HPCBOX_PROCMAGIC_H

#include <stddef.h>

#include "guestpath.h"

/* 1: host is no path through such a link (out untouched); 0: out holds the host path to use
 * instead; <0: -errno (-ELOOP after 8 links in a row, -ENAMETOOLONG, a gp_to_host error).
 * flags: GP_FOLLOW_LAST as for gp_to_host. A link whose target is not a directory inside the
 * guest (a pipe, a deleted or outside directory) is left alone (1). */
int gp_proc_magic(const struct gp_context *ctx, const char *host, int flags, char *out, size_t out_size);

#endif

/* guestpath: translate paths between a contained program's view (the guest) and the host.
 *
 * Shared by the ptrace and preload engines. No global state: everything lives in a
 * struct gp_context that the engine builds once (root, bindings, cwd) and then reads
 * from any number of threads, as long as nobody changes it at the same time.
 *
 * Every function returns 0 on success or a negative errno; gp_to_guest may also return
 * GP_OUTSIDE (positive). Output buffers are provided by the caller (PATH_MAX is enough);
 * the translation functions never allocate. Only gp_add_binding allocates.
 *
 * Semantics (the same as integration/hpcbox_testing/guestpath_model.py):
 *  - A guest path is resolved component by component from the guest root ("/"), or from
 *    the guest cwd when relative. "", "." and repeated "/" are no-ops; ".." drops the last
 *    resolved component and stays at "/" at the root (it never escapes).
 *  - Each resolved guest path is mapped to a host path (see "bindings") and looked at with
 *    lstat. A symlink is followed when it is not the final component, or when it is and
 *    GP_FOLLOW_LAST is set, or when the final component is followed by a "/". Its target is
 *    a guest path: an absolute target starts again at the guest root, a relative one at the
 *    link's guest directory. More than GP_MAX_LINKS (40, as Linux) links in one call: -ELOOP.
 *  - A missing intermediate component: -ENOENT; an intermediate that is not a directory:
 *    -ENOTDIR. A missing final component is fine (the path a creation would use); when the
 *    guest path ended in "/", the host path then ends in "/" too, so that the kernel still
 *    refuses to create a regular file there. An existing final component followed by "/"
 *    that is not a directory: -ENOTDIR.
 *  - GP_PARENT (the kernel's own rule for the calls that create, remove or rename a name: the
 *    final component is never followed nor normalised). Only the directory part is resolved (as
 *    above, following every link); the final component is then appended as the program wrote it,
 *    with its trailing "/" if any, so that the kernel itself decides what "d/.", "d/..", "f/",
 *    "link/" or a final symlink mean (rmdir("d/.") is EINVAL, unlink("f/") ENOTDIR, rename("a/")
 *    of a file ENOTDIR, mkdir("d/..") EEXIST). A final "." or ".." is appended to the host path
 *    of the directory part, never resolved: ".." at the guest root then names the host's parent
 *    of the root, on which none of those calls acts (they all refuse a final "." or ".."). A path
 *    made of "/" only gives root + "/." (which every such call refuses with the errno Linux gives
 *    for "/", but rmdir: GP_RMDIR then gives -EBUSY). A normal final name is mapped like any
 *    resolved path (bindings included). GP_NO_MOUNT: a binding's own guest path is a mount point:
 *    -EBUSY (GP_RMDIR: -ENOTDIR when it is no directory; GP_UNLINK: -EISDIR when it is one), as
 *    rmdir, unlink and rename of a mount point fail on Linux. For rename, whose other path the
 *    kernel looks up first, engines use gp_check_move instead (below), which keeps Linux's order.
 *  - Bindings are prefix substitutions on the resolved guest path, in mount order: of the
 *    bindings whose guest prefix equals the path or is followed in it by "/", the one added last
 *    wins (a later mount at or above a path hides the earlier ones there, a later one below it
 *    is on top); the rest of the path is appended to its host path. Otherwise the host path is root + guest path.
 *    Inside a binding, symlink targets are guest paths too (an absolute target found in the
 *    host tree of a binding starts again at the guest root, not the host root). A binding's
 *    guest prefix is taken literally (lexically normalised, not resolved through the rootfs),
 *    and only the resolved guest paths that go through it literally reach it. A guest ancestor
 *    of a binding (/mnt for /mnt/data) that the rootfs lacks counts as a directory in the walk,
 *    as if a runtime had created the mount point; its host path still does not exist, so an
 *    engine that wants `ls /mnt` to work creates it in the rootfs.
 *  - gp_to_guest maps a host path back: the longest matching host prefix among the bindings'
 *    host paths and the root wins (a binding wins a tie with the root, the binding added last a
 *    tie with another: `-v /tmp:/b -v /tmp:/a` shows the cwd /tmp as /a); a host path under none
 *    of them comes back unchanged (lexically normalised) with return value GP_OUTSIDE.
 *    It is lexical: the host path is expected to be canonical (as getcwd or readlink of
 *    /proc/self/cwd give it). gp_to_guest(gp_to_host(p)) == p for an existing canonical p
 *    when no binding's host path lies inside the root or inside another binding's host path.
 *
 * Races: the walk is path based; a rootfs changed by someone else between two components can
 * be seen half old, half new (as with PRoot). The rootfs belongs to the user who runs it.
 */
#ifndef HPCBOX_GUESTPATH_H
#define HPCBOX_GUESTPATH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define GP_FOLLOW_LAST 0x1 /* stat semantics for the final component (lstat without it) */
#define GP_PARENT 0x2      /* the call works on the final name itself (mkdir, rmdir, unlink, rename,
                            * link and symlink's new name, mknod, O_CREAT|O_EXCL, bind): resolve
                            * only the directory part, keep the final name as written */
#define GP_NO_MOUNT 0x4    /* with GP_PARENT, for the calls that remove or move the final name
                            * (rmdir, unlink, rename): -EBUSY when it is a mount point (the guest's
                            * "/" or a binding's guest path), as the kernel refuses to remove or
                            * move one; with GP_RMDIR or GP_UNLINK the kernel's type check first */
#define GP_RMDIR 0x8       /* with GP_NO_MOUNT: rmdir (a mount point that is no directory: ENOTDIR) */
#define GP_UNLINK 0x10     /* with GP_NO_MOUNT: unlink (a mount point that is a directory: EISDIR) */
#define GP_OUTSIDE 1       /* gp_to_guest: the host path is under neither the root nor a binding */
#define GP_SAME 2          /* gp_check_move: a mount point renamed onto itself (success, nothing done) */
#define GP_MOVE_RENAME 0   /* gp_check_move: rename, renameat, renameat2 */
#define GP_MOVE_LINK 1     /* gp_check_move: link, linkat */
#define GP_MOVE_READONLY 0x100 /* gp_check_move, or'ed into kind: new's directory is on a read-only mount */
#define GP_MOVE_OLD_FD 0x200   /* gp_check_move, or'ed into kind: link's old is a descriptor's file
                                * (linkat AT_EMPTY_PATH): it exists, even where its name is gone */
#define GP_MAX_LINKS 40    /* symlinks followed in one resolution, as Linux's MAXSYMLINKS */

struct gp_binding {
    char *guest;       /* absolute, normalised, never "/" */
    size_t guest_len;
    char *host;        /* absolute, canonical (realpath) */
    size_t host_len;
};

struct gp_context {
    size_t root_len;
    size_t cwd_len;
    struct gp_binding *bindings;
    size_t n_bindings;
    size_t cap_bindings;
    long self_pid;       /* gp_set_self: the process "/proc/self" means (0: the caller's, off) */
    long self_tid;
    /* the buffers last: gp_context_init zeroes what comes before them, not 8 KiB (pages a new
     * process would otherwise touch) */
    char root[PATH_MAX]; /* canonical host path of the guest's "/", no trailing "/" unless "/" */
    char cwd[PATH_MAX];  /* canonical guest path */
};

/* Set up ctx for the rootfs at host_root (an existing directory; made canonical with realpath).
 * The cwd starts at "/", with no bindings. */
int gp_context_init(struct gp_context *ctx, const char *host_root);

/* Free what gp_add_binding allocated. ctx may be initialised again afterwards. */
void gp_context_destroy(struct gp_context *ctx);

/* Bind the host path host (must exist; made canonical) at guest prefix guest (absolute, not "/";
 * lexically normalised). Adding the same guest prefix again replaces the earlier binding, and the
 * new one counts as added last.
 * -EINVAL for a relative path or "/", -ENAMETOOLONG, -ENOMEM, or the errno of realpath(host). */
int gp_add_binding(struct gp_context *ctx, const char *guest, const char *host);

/* Set the guest cwd: an absolute, canonical guest path (lexically normalised here; the caller
 * resolves it, e.g. with gp_canonical, when it comes from chdir). */
int gp_set_cwd(struct gp_context *ctx, const char *guest_cwd);

/* For an engine that translates on behalf of another process (a tracer): make the host's
 * "/proc/self" and "/proc/thread-self" mean process pid / thread tid instead of the caller, and
 * stop at the kernel's "magic" links under /proc/<pid>/ (fd/N, cwd, exe, root, ns/...) when they
 * would be followed: the rest of the path is appended as it is, and the kernel follows them
 * itself (their readlink text, such as "pipe:[42]", is no path to walk). pid 0 turns this off
 * (the default after gp_context_init). Only host paths under /proc are affected. */
int gp_set_self(struct gp_context *ctx, long pid, long tid);

/* Resolve guest_path to its canonical guest path (no ".", "..", "//" or symlinks but a final
 * one that was not followed). Errors as described above. */
int gp_canonical(const struct gp_context *ctx, const char *guest_path, int flags, char *out,
                 size_t out_size);

/* Whether a binding's guest path lies below the canonical guest path guest[0..len) (which then
 * appears as a directory, as mount points' parents do). */
bool gp_binding_below(const struct gp_context *ctx, const char *guest, size_t len);

/* gp_canonical (following a final symlink) for a path expected to name a directory, with what the
 * walk saw of it: 0 a directory, -ENOTDIR another type, 1 not seen (missing, or not looked at:
 * the caller looks, e.g. with stat of its host path), or an error of gp_canonical; -EINVAL when
 * out is shorter than PATH_MAX or overlaps guest_path. Spares a caller that keeps directories one
 * stat (the preload engine's directory cache). */
int gp_canonical_dir(const struct gp_context *ctx, const char *guest_path, char *out, size_t out_size);

/* Resolve guest_path and map it to the host path the kernel should be given. */
int gp_to_host(const struct gp_context *ctx, const char *guest_path, int flags, char *out,
               size_t out_size);

/* Map a canonical guest path (as gp_canonical gives it) to the host, without touching the disk. */
int gp_map_canonical(const struct gp_context *ctx, const char *guest_canonical, char *out,
                     size_t out_size);

/* rename(2) and link(2) across mounts, in the order Linux checks them (bindings are the mounts).
 * old and new are the canonical guest paths of the call's two names as gp_canonical gives them
 * (rename: GP_PARENT for both; link: old resolved as the call asks, new GP_PARENT); flags are
 * renameat2's (RENAME_NOREPLACE, RENAME_EXCHANGE; 0 otherwise). The parent directories (rename) or
 * old itself and new's parent (link) on different mounts: -EXDEV, before anything but the lookup
 * errors of the two directories (rename("/vol/..", "/x") is EXDEV, not EBUSY), after a link's
 * EEXIST. A binding's own guest path renamed (from or to): the kernel's checks first (-ENOENT,
 * -EEXIST, -ENOTDIR for a trailing "/", -EINVAL/-ENOTEMPTY for a path below the other, -ENOTDIR/
 * -EISDIR for a type mismatch), then -EBUSY; GP_SAME when old and new are the same mount point.
 * With GP_MOVE_READONLY in kind (the engine's read-only bindings are not read-only on the host):
 * -EROFS where Linux checks the mount's write access: a rename's after -EXDEV and a final "." or
 * "..", before any lookup of the names; a link's after old's lookup and new's -EEXIST, before -EXDEV.
 * 0: nothing to refuse, the kernel decides on the host paths (and fails where Linux would first). */
int gp_check_move(const struct gp_context *ctx, const char *old, const char *new, int kind, unsigned flags);

/* Map an absolute host path back to the guest: 0, GP_OUTSIDE (out holds the normalised host
 * path unchanged), or -EINVAL (relative) / -ENAMETOOLONG. */
int gp_to_guest(const struct gp_context *ctx, const char *host_path, char *out, size_t out_size);

#endif

/* TAP tests of guestpath: builds a small rootfs under a temporary directory and checks the
 * translations, errors and reverse mappings. Exit status 0 only when every test passed.
 * Build and run: make -C csrc/guestpath test */
#define _GNU_SOURCE
#include "guestpath.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_tests, n_failed;
static char tmp[512], root[600], outside[600];

static void ok(int cond, const char *what, const char *detail)
{
    n_tests++;
    if (!cond)
        n_failed++;
    printf("%sok %d - %s%s%s\n", cond ? "" : "not ", n_tests, what, detail ? " # " : "",
           detail ? detail : "");
}

static void must(int rc, const char *what)
{
    if (rc < 0) {
        printf("Bail out! %s: %s\n", what, strerror(errno));
        exit(1);
    }
}

static void mk(const char *fmt, const char *rel, mode_t mode)
{
    char p[PATH_MAX];

    snprintf(p, sizeof(p), fmt, rel);
    if (mode == 0) {
        int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

        must(fd, p);
        close(fd);
    } else {
        must(mkdir(p, mode), p);
    }
}

static void ln(const char *target, const char *rel)
{
    char p[PATH_MAX];

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    must(symlink(target, p), p);
}

/* Expect gp_to_host(path) == root + want_rel (want_rel relative to `base`, root when NULL). */
static void expect_host(const struct gp_context *ctx, const char *path, int flags, const char *base,
                        const char *want_rel)
{
    char out[PATH_MAX], want[PATH_MAX + 64], name[3 * PATH_MAX];
    int rc = gp_to_host(ctx, path, flags, out, sizeof(out));

    snprintf(want, sizeof(want), "%s%s", base ? base : root, want_rel);
    snprintf(name, sizeof(name), "to_host(%s, flags %d) is %s", path, flags, want);
    if (rc < 0) {
        char detail[64];

        snprintf(detail, sizeof(detail), "got error %s", strerror(-rc));
        ok(0, name, detail);
        return;
    }
    ok(strcmp(out, want) == 0, name, strcmp(out, want) == 0 ? NULL : out);
}

static void expect_err(const struct gp_context *ctx, const char *path, int flags, int err)
{
    char out[PATH_MAX], name[2 * PATH_MAX];
    int rc = gp_to_host(ctx, path, flags, out, sizeof(out));

    snprintf(name, sizeof(name), "to_host(%s, flags %d) fails with %s", path, flags, strerror(err));
    ok(rc == -err, name, rc == -err ? NULL : (rc < 0 ? strerror(-rc) : out));
}

static void expect_guest(const struct gp_context *ctx, const char *host, const char *want, int want_rc)
{
    char out[PATH_MAX], name[3 * PATH_MAX];
    int rc = gp_to_guest(ctx, host, out, sizeof(out));

    snprintf(name, sizeof(name), "to_guest(%s) is %s (rc %d)", host, want, want_rc);
    ok(rc == want_rc && strcmp(out, want) == 0, name, rc == want_rc ? out : "wrong return code");
}

static void build_tree(void)
{
    const char *base = getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 400 ? getenv("TMPDIR") : "/tmp";

    snprintf(tmp, sizeof(tmp), "%s/gp-test-XXXXXX", base);
    if (!mkdtemp(tmp)) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    snprintf(root, sizeof(root), "%s/root", tmp);
    snprintf(outside, sizeof(outside), "%s/outside", tmp);
    must(mkdir(root, 0755), root);
    must(mkdir(outside, 0755), outside);
    mk("%s/usr", root, 0755);
    mk("%s/usr/lib", root, 0755);
    mk("%s/usr/bin", root, 0755);
    mk("%s/etc", root, 0755);
    mk("%s/usr/lib/libc.so.6", root, 0);
    mk("%s/usr/bin/sh", root, 0);
    mk("%s/etc/passwd", root, 0);
    mk("%s/data.txt", outside, 0);
    mk("%s/sub", outside, 0755);
    ln("usr/lib", "lib");            /* relative, like merged-usr Debian */
    ln("/usr/bin", "bin");           /* absolute: a guest path */
    ln("/../../../../etc", "up");    /* points above the root: clamps to /etc */
    ln("../../..", "usr/lib/dots");  /* relative, climbs above the root */
    ln("loop2", "loop1");
    ln("loop1", "loop2");
    ln("missing/file", "dangling");
    ln("/usr/lib/libc.so.6", "libc");
    ln("/", "slash");
    ln("/etc", "outside-link");      /* inside a binding: still a guest path */
    {
        char p[PATH_MAX];

        snprintf(p, sizeof(p), "%s/sub/abs", outside);
        must(symlink("/etc/passwd", p), p);
        snprintf(p, sizeof(p), "%s/sub/up", outside);
        must(symlink("../../..", p), p);
    }
}

static void rm_tree(const char *dir)
{
    char cmd[PATH_MAX + 32];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

static void test_forward(struct gp_context *ctx)
{
    expect_host(ctx, "/", 0, NULL, "");
    expect_host(ctx, "/usr/lib/libc.so.6", 0, NULL, "/usr/lib/libc.so.6");
    expect_host(ctx, "//usr/./lib//libc.so.6", 0, NULL, "/usr/lib/libc.so.6");
    expect_host(ctx, "/lib/libc.so.6", 0, NULL, "/usr/lib/libc.so.6");
    expect_host(ctx, "/bin/sh", 0, NULL, "/usr/bin/sh");
    expect_host(ctx, "/lib", 0, NULL, "/lib");
    expect_host(ctx, "/lib", GP_FOLLOW_LAST, NULL, "/usr/lib");
    expect_host(ctx, "/lib/", 0, NULL, "/usr/lib");
    expect_host(ctx, "/..", 0, NULL, "");
    expect_host(ctx, "/../../etc/passwd", 0, NULL, "/etc/passwd");
    expect_host(ctx, "/up/passwd", 0, NULL, "/etc/passwd");
    expect_host(ctx, "/usr/lib/dots/etc", 0, NULL, "/etc");
    expect_host(ctx, "/lib/../bin", 0, NULL, "/usr/bin");  /* .. after a followed link: physical */
    expect_host(ctx, "/libc", GP_FOLLOW_LAST, NULL, "/usr/lib/libc.so.6");
    expect_host(ctx, "/slash/slash/usr", 0, NULL, "/usr");
    expect_host(ctx, "/usr/newfile", 0, NULL, "/usr/newfile");
    expect_host(ctx, "/usr/newdir/", 0, NULL, "/usr/newdir/");
    expect_host(ctx, "/dangling", 0, NULL, "/dangling");
    expect_err(ctx, "/dangling", GP_FOLLOW_LAST, ENOENT);
    expect_err(ctx, "/nothere/file", 0, ENOENT);
    expect_err(ctx, "/usr/lib/libc.so.6/x", 0, ENOTDIR);
    expect_err(ctx, "/usr/lib/libc.so.6/", 0, ENOTDIR);
    expect_err(ctx, "/usr/lib/libc.so.6/..", 0, ENOTDIR);
    expect_err(ctx, "/loop1", GP_FOLLOW_LAST, ELOOP);
    expect_host(ctx, "/loop1", 0, NULL, "/loop1");
    expect_err(ctx, "/loop1/x", 0, ELOOP);
    expect_err(ctx, "", 0, ENOENT);
}

static void test_chain_limit(struct gp_context *ctx)
{
    char name[32], target[32];

    /* c0 -> c1 -> ... -> c40 -> usr: 41 links from c0, 40 from c1 */
    for (int i = 0; i <= 40; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        snprintf(target, sizeof(target), i == 40 ? "usr" : "c%d", i + 1);
        ln(target, name);
    }
    expect_host(ctx, "/c1/lib", 0, NULL, "/usr/lib");
    expect_err(ctx, "/c0/lib", 0, ELOOP);
}

static void test_cwd(struct gp_context *ctx)
{
    ok(gp_set_cwd(ctx, "/usr/bin") == 0, "set_cwd(/usr/bin)", NULL);
    expect_host(ctx, "sh", 0, NULL, "/usr/bin/sh");
    expect_host(ctx, "../lib/libc.so.6", 0, NULL, "/usr/lib/libc.so.6");
    expect_host(ctx, "../../../../etc", 0, NULL, "/etc");
    expect_host(ctx, ".", 0, NULL, "/usr/bin");
    ok(gp_set_cwd(ctx, "relative") == -EINVAL, "set_cwd(relative) is EINVAL", NULL);
    expect_host(ctx, "sh", 0, NULL, "/usr/bin/sh"); /* unchanged by the failed call */
    ok(gp_set_cwd(ctx, "/") == 0, "set_cwd(/)", NULL);
}

/* GP_PARENT: the directory part resolved, the final name kept as written for the kernel. */
static void test_parent(struct gp_context *ctx)
{
    char out[PATH_MAX];
    int rc;

    expect_host(ctx, "/usr/lib/.", GP_PARENT, NULL, "/usr/lib/.");     /* rmdir: EINVAL */
    expect_host(ctx, "/usr/lib/./", GP_PARENT, NULL, "/usr/lib/./");
    expect_host(ctx, "/usr/lib/..", GP_PARENT, NULL, "/usr/lib/..");   /* rmdir: ENOTEMPTY */
    expect_host(ctx, "/lib/.", GP_PARENT, NULL, "/usr/lib/.");         /* the directory part follows */
    expect_host(ctx, "/lib", GP_PARENT, NULL, "/lib");                 /* the link itself */
    expect_host(ctx, "/lib", GP_PARENT | GP_FOLLOW_LAST, NULL, "/lib");
    expect_host(ctx, "/lib/", GP_PARENT, NULL, "/lib/");               /* rmdir, rename: ENOTDIR */
    expect_host(ctx, "/etc/passwd/", GP_PARENT, NULL, "/etc/passwd/"); /* unlink: ENOTDIR */
    expect_host(ctx, "/dangling", GP_PARENT, NULL, "/dangling");       /* mkdir: EEXIST */
    expect_host(ctx, "/usr/new/", GP_PARENT, NULL, "/usr/new/");
    expect_host(ctx, "/bin/new", GP_PARENT, NULL, "/usr/bin/new");
    expect_host(ctx, "/..", GP_PARENT, NULL, "/..");                   /* never acted on */
    expect_host(ctx, "/up/..", GP_PARENT, NULL, "/etc/..");
    expect_host(ctx, "/../../usr/x", GP_PARENT, NULL, "/usr/x");
    expect_host(ctx, "/usr//bin//sh//", GP_PARENT, NULL, "/usr/bin/sh/");
    expect_err(ctx, "/nothere/x", GP_PARENT, ENOENT);
    expect_err(ctx, "/loop1/x", GP_PARENT, ELOOP);
    expect_host(ctx, "/nothere/", GP_PARENT, NULL, "/nothere/");
    expect_err(ctx, "/usr/bin/sh/x", GP_PARENT, ENOTDIR);
    expect_err(ctx, "", GP_PARENT, ENOENT);
    expect_host(ctx, "/", GP_PARENT, NULL, "/.");                    /* mkdir: EEXIST */
    expect_host(ctx, "///", GP_PARENT, NULL, "/.");
    expect_host(ctx, "/", GP_PARENT | GP_NO_MOUNT, NULL, "/.");         /* rename: EBUSY */
    expect_err(ctx, "/", GP_PARENT | GP_NO_MOUNT | GP_RMDIR, EBUSY);
    expect_host(ctx, "//", GP_PARENT | GP_NO_MOUNT | GP_UNLINK, NULL, "/."); /* EISDIR */
    ok(gp_set_cwd(ctx, "/usr/bin") == 0, "set_cwd(/usr/bin)", NULL);
    expect_host(ctx, ".", GP_PARENT, NULL, "/usr/bin/.");
    expect_host(ctx, "..", GP_PARENT, NULL, "/usr/bin/..");
    expect_host(ctx, "sh/", GP_PARENT, NULL, "/usr/bin/sh/");
    expect_host(ctx, "../lib/x", GP_PARENT, NULL, "/usr/lib/x");
    rc = gp_canonical(ctx, "../../lib/.", GP_PARENT, out, sizeof(out));
    ok(rc == 0 && strcmp(out, "/usr/lib/.") == 0, "canonical(../../lib/., GP_PARENT) is /usr/lib/.",
       rc == 0 ? out : strerror(-rc));
    ok(gp_set_cwd(ctx, "/") == 0, "set_cwd(/)", NULL);
    rc = gp_canonical(ctx, "/lib", GP_PARENT, out, sizeof(out));
    ok(rc == 0 && strcmp(out, "/lib") == 0, "canonical(/lib, GP_PARENT) is /lib", NULL);
}

static void test_bindings(struct gp_context *ctx)
{
    char file[700], canon[PATH_MAX];
    int rc;

    snprintf(file, sizeof(file), "%s/data.txt", outside);
    ok(gp_add_binding(ctx, "/mnt/data", outside) == 0, "bind /mnt/data", NULL);
    ok(gp_add_binding(ctx, "/etc/passwd", file) == 0, "bind a single file at /etc/passwd", NULL);
    ok(gp_add_binding(ctx, "/", outside) == -EINVAL, "bind at / is EINVAL", NULL);
    ok(gp_add_binding(ctx, "rel", outside) == -EINVAL, "bind at a relative path is EINVAL", NULL);
    ok(gp_add_binding(ctx, "/x", "/no/such/host/dir") == -ENOENT, "bind of a missing host path", NULL);

    /* /mnt does not exist in the root: the binding is still reachable (prefix substitution) */
    expect_host(ctx, "/mnt/data", 0, outside, "");
    expect_host(ctx, "/mnt/data/data.txt", 0, outside, "/data.txt");
    expect_host(ctx, "/mnt/data/sub/abs", GP_FOLLOW_LAST, outside, "/data.txt"); /* -> /etc/passwd */
    expect_host(ctx, "/mnt/data/sub/up/usr", 0, NULL, "/usr"); /* ../../.. leaves the binding */
    expect_host(ctx, "/mnt/data/..", 0, NULL, "/mnt");
    expect_host(ctx, "/etc/passwd", 0, outside, "/data.txt");
    expect_host(ctx, "/up/passwd", 0, outside, "/data.txt");
    expect_host(ctx, "/mnt/database", 0, NULL, "/mnt/database"); /* not under /mnt/data */
    expect_err(ctx, "/mnt/other/x", 0, ENOENT); /* /mnt is virtual, /mnt/other is not */
    /* GP_PARENT at and under a binding; GP_NO_MOUNT refuses to remove or move a mount point */
    expect_host(ctx, "/mnt/data", GP_PARENT, outside, "");
    expect_host(ctx, "/mnt/data/sub", GP_PARENT | GP_NO_MOUNT, outside, "/sub");
    expect_host(ctx, "/mnt/data/.", GP_PARENT | GP_NO_MOUNT, outside, "/.");
    expect_host(ctx, "/mnt/data/..", GP_PARENT | GP_NO_MOUNT, outside, "/..");
    expect_err(ctx, "/mnt/data", GP_PARENT | GP_NO_MOUNT, EBUSY);
    expect_err(ctx, "/mnt/data/", GP_PARENT | GP_NO_MOUNT, EBUSY);
    expect_err(ctx, "/up/passwd", GP_PARENT | GP_NO_MOUNT, EBUSY);
    expect_err(ctx, "/etc/passwd", GP_PARENT | GP_NO_MOUNT | GP_RMDIR, ENOTDIR);
    expect_err(ctx, "/etc/passwd", GP_PARENT | GP_NO_MOUNT | GP_UNLINK, EBUSY);
    expect_err(ctx, "/mnt/data", GP_PARENT | GP_NO_MOUNT | GP_UNLINK, EISDIR);
    expect_err(ctx, "/mnt/data", GP_PARENT | GP_NO_MOUNT | GP_RMDIR, EBUSY);

    rc = gp_canonical(ctx, "/lib/../../up/passwd", 0, canon, sizeof(canon));
    ok(rc == 0 && strcmp(canon, "/etc/passwd") == 0, "canonical(/lib/../../up/passwd) is /etc/passwd",
       rc == 0 ? canon : strerror(-rc));

    expect_guest(ctx, outside, "/mnt/data", 0);
    expect_guest(ctx, file, "/etc/passwd", 0);
    expect_guest(ctx, root, "/", 0);
    {
        char p[PATH_MAX * 2];

        snprintf(p, sizeof(p), "%s/usr/lib/", root);
        expect_guest(ctx, p, "/usr/lib", 0);
        snprintf(p, sizeof(p), "%s/sub/../sub/abs", outside);
        expect_guest(ctx, p, "/mnt/data/sub/abs", 0);
        snprintf(p, sizeof(p), "%sx/y", root); /* shares a prefix with root, not under it */
        expect_guest(ctx, p, p, GP_OUTSIDE);
    }
    expect_guest(ctx, "/nowhere/x", "/nowhere/x", GP_OUTSIDE);
    expect_guest(ctx, "/", "/", GP_OUTSIDE);
    {
        char out[8];

        ok(gp_to_guest(ctx, "relative", out, sizeof(out)) == -EINVAL, "to_guest(relative) is EINVAL",
           NULL);
        ok(gp_to_host(ctx, "/usr/lib/libc.so.6", 0, out, sizeof(out)) == -ENAMETOOLONG,
           "to_host into a short buffer is ENAMETOOLONG", NULL);
    }
}

/* Mount order: the binding added last wins where several cover a path, and a tie when mapping back. */
static void test_mount_order(void)
{
    struct gp_context ctx;
    char sub[700];

    snprintf(sub, sizeof(sub), "%s/sub", outside);
    if (gp_context_init(&ctx, root) != 0) {
        ok(0, "init for the mount-order tests", NULL);
        return;
    }
    ok(gp_add_binding(&ctx, "/w/b", sub) == 0 && gp_add_binding(&ctx, "/w", outside) == 0,
       "bind /w/b, then /w over it", NULL);
    expect_err(&ctx, "/w/b/abs", 0, ENOENT); /* /w hides the earlier /w/b: no b in it */
    expect_host(&ctx, "/w/sub/abs", 0, outside, "/sub/abs");
    ok(gp_add_binding(&ctx, "/w/b", sub) == 0, "bind /w/b again: now on top", NULL);
    expect_host(&ctx, "/w/b/abs", 0, sub, "/abs");
    expect_host(&ctx, "/w/data.txt", 0, outside, "/data.txt");
    gp_context_destroy(&ctx);

    if (gp_context_init(&ctx, root) != 0)
        return;
    ok(gp_add_binding(&ctx, "/b", outside) == 0 && gp_add_binding(&ctx, "/a", outside) == 0,
       "bind one host directory at /b, then at /a", NULL);
    expect_guest(&ctx, outside, "/a", 0); /* -w /a -v DIR:/b -v DIR:/a: pwd shows /a */
    ok(gp_add_binding(&ctx, "/b", outside) == 0, "bind it at /b again", NULL);
    expect_guest(&ctx, outside, "/b", 0);
    gp_context_destroy(&ctx);
}

static void test_host_root(void)
{
    struct gp_context ctx;
    char out[PATH_MAX];

    ok(gp_context_init(&ctx, "/") == 0, "init with root /", NULL);
    ok(gp_to_host(&ctx, "/etc/../etc", 0, out, sizeof(out)) == 0 && strcmp(out, "/etc") == 0,
       "root /: /etc/../etc is /etc", out);
    ok(gp_to_guest(&ctx, "/etc", out, sizeof(out)) == 0 && strcmp(out, "/etc") == 0,
       "root /: to_guest(/etc) is /etc", out);
    gp_context_destroy(&ctx);
    ok(gp_context_init(&ctx, "/no/such/root") == -ENOENT, "init with a missing root is ENOENT", NULL);
    ok(gp_context_init(&ctx, "/etc/passwd") == -ENOTDIR, "init with a file as root is ENOTDIR", NULL);
}

/* gp_set_self: /proc/self means another process, and magic links are left to the kernel. */
static void test_self(void)
{
    struct gp_context ctx;
    char out[PATH_MAX], want[PATH_MAX];
    long pid = (long)getppid();

    ok(gp_context_init(&ctx, root) == 0, "init for the /proc/self tests", NULL);
    ok(gp_add_binding(&ctx, "/proc", "/proc") == 0 && gp_add_binding(&ctx, "/dev", "/dev") == 0,
       "bind /proc and /dev", NULL);
    ok(gp_set_self(&ctx, -1, 0) == -EINVAL, "set_self(-1) is EINVAL", NULL);
    ok(gp_set_self(&ctx, pid, 0) == 0, "set_self(parent)", NULL);
    snprintf(want, sizeof(want), "/proc/%ld", pid);
    ok(gp_to_host(&ctx, "/proc/self", GP_FOLLOW_LAST, out, sizeof(out)) == 0 && strcmp(out, want) == 0,
       "/proc/self is the traced process", out);
    snprintf(want, sizeof(want), "/proc/%ld/task/%ld/comm", pid, pid);
    ok(gp_to_host(&ctx, "/proc/thread-self/comm", 0, out, sizeof(out)) == 0 && strcmp(out, want) == 0,
       "/proc/thread-self is its thread", out);
    snprintf(want, sizeof(want), "/proc/%ld/fd/0", pid);
    ok(gp_to_host(&ctx, "/proc/self/fd/0", GP_FOLLOW_LAST, out, sizeof(out)) == 0 && strcmp(out, want) == 0,
       "/proc/self/fd/0 stays a magic link", out);
    if (access("/dev/stdin", F_OK) == 0) {
        ok(gp_to_host(&ctx, "/dev/stdin", GP_FOLLOW_LAST, out, sizeof(out)) == 0 &&
           strcmp(out, want) == 0, "/dev/stdin leads to the traced process's fd 0", out);
    }
    snprintf(want, sizeof(want), "/proc/%ld/cwd/x/../y", pid);
    ok(gp_to_host(&ctx, "/proc/self/cwd/x/../y", 0, out, sizeof(out)) == 0 && strcmp(out, want) == 0,
       "the rest after a magic link is left to the kernel", out);
    ok(gp_set_self(&ctx, 0, 0) == 0, "set_self(0) turns it off", NULL);
    snprintf(want, sizeof(want), "/proc/%ld", (long)getpid());
    ok(gp_to_host(&ctx, "/proc/self", GP_FOLLOW_LAST, out, sizeof(out)) == 0 && strcmp(out, want) == 0,
       "without set_self /proc/self is the caller", out);
    gp_context_destroy(&ctx);
}

static void expect_move(const struct gp_context *ctx, const char *old, const char *new, int kind, unsigned flags,
                        int want)
{
    char name[2 * PATH_MAX + 64];
    int rc = gp_check_move(ctx, old, new, kind, flags);

    snprintf(name, sizeof(name), "check_move(%s, %s, %s %#x, %u) is %d", old, new,
             (kind & GP_MOVE_LINK) ? "link" : "rename", (unsigned)kind, flags, want);
    ok(rc == want, name, rc == want ? NULL : (rc < 0 ? strerror(-rc) : "a positive result"));
}

/* rename and link across bindings, and a binding's own guest path renamed, in Linux's order
 * (bindings as in test_bindings: /mnt/data a directory, /etc/passwd a file). */
static void test_moves(const struct gp_context *ctx)
{
    const int R = GP_MOVE_RENAME, L = GP_MOVE_LINK;

    expect_move(ctx, "/usr/lib/libc.so.6", "/usr/lib/x", R, 0, 0);
    expect_move(ctx, "/mnt/data/data.txt", "/usr/x", R, 0, -EXDEV);
    expect_move(ctx, "/usr/bin/sh", "/mnt/data/sh", R, 0, -EXDEV);
    expect_move(ctx, "/mnt/data/nosuch", "/usr/x", R, 0, -EXDEV);  /* before ENOENT */
    expect_move(ctx, "/mnt/data/..", "/x", R, 0, -EXDEV);          /* before EBUSY for ".." */
    expect_move(ctx, "/mnt/data/.", "/x", R, 0, -EXDEV);
    expect_move(ctx, "/usr/bin/sh", "/mnt/data/..", R, 0, -EXDEV);
    expect_move(ctx, "/mnt/data/.", "/mnt/data/y", R, 0, 0);       /* the kernel's EBUSY, same mount */
    expect_move(ctx, "/mnt/data", "/mnt/data/sub/x", R, 0, -EXDEV);
    expect_move(ctx, "/mnt/data", "/x", R, 0, -EBUSY);
    expect_move(ctx, "/mnt/data/", "/x", R, 0, -EBUSY);
    expect_move(ctx, "/usr/lib", "/mnt/data", R, 0, -EBUSY);
    expect_move(ctx, "/usr/bin/sh", "/mnt/data", R, 0, -EISDIR);    /* the type check first */
    expect_move(ctx, "/usr/bin/sh", "/etc/passwd", R, 0, -EBUSY);
    expect_move(ctx, "/usr/lib", "/etc/passwd", R, 0, -ENOTDIR);
    expect_move(ctx, "/etc/passwd", "/usr/lib", R, 0, -EISDIR);
    expect_move(ctx, "/etc/passwd/", "/x", R, 0, -ENOTDIR);
    expect_move(ctx, "/etc/passwd", "/x/", R, 0, -ENOTDIR);
    expect_move(ctx, "/usr/nosuch", "/etc/passwd", R, 0, -ENOENT);
    expect_move(ctx, "/usr/lib", "/etc/passwd", R, 1 /* RENAME_NOREPLACE */, -EEXIST);
    expect_move(ctx, "/etc/passwd", "/nosuch", R, 2 /* RENAME_EXCHANGE */, -ENOENT);
    expect_move(ctx, "/etc/passwd", "/usr/lib", R, 2, -EBUSY);
    expect_move(ctx, "/etc/passwd", "/etc/passwd", R, 0, GP_SAME);
    expect_move(ctx, "/etc", "/etc/passwd", R, 0, -EINVAL);         /* the source above the target */
    expect_move(ctx, "/.", "/x", R, 0, 0);                          /* the kernel's EBUSY */
    expect_move(ctx, "/mnt/data/data.txt", "/usr/l", L, 0, -EXDEV);
    expect_move(ctx, "/usr/bin/sh", "/mnt/data/l", L, 0, -EXDEV);
    expect_move(ctx, "/mnt/data/data.txt", "/mnt/data/l", L, 0, 0);
    expect_move(ctx, "/mnt/data", "/usr/l", L, 0, -EXDEV);          /* a mount's root is on it */
    expect_move(ctx, "/mnt/data/data.txt", "/etc/passwd", L, 0, 0); /* the kernel's EEXIST first */
    expect_move(ctx, "/mnt/data/nosuch", "/usr/l", L, 0, 0);        /* the kernel's ENOENT first */
    expect_move(ctx, "/mnt/data/data.txt", "/usr/l/", L, 0, 0);     /* the kernel's ENOENT */
    /* /mnt/data read-only (GP_MOVE_READONLY: new's directory is on it): EXDEV, then ".", then EROFS
     * for a rename; a link's ENOENT and EEXIST, then EROFS, then EXDEV */
    expect_move(ctx, "/mnt/data/data.txt", "/usr/x", R | GP_MOVE_READONLY, 0, -EXDEV);
    expect_move(ctx, "/mnt/data/.", "/mnt/data/y", R | GP_MOVE_READONLY, 0, 0);
    expect_move(ctx, "/mnt/data/data.txt", "/mnt/data/y", R | GP_MOVE_READONLY, 0, -EROFS);
    expect_move(ctx, "/mnt/data/nosuch", "/mnt/data/y", R | GP_MOVE_READONLY, 0, -EROFS);
    expect_move(ctx, "/usr/bin/sh", "/mnt/data/l", L | GP_MOVE_READONLY, 0, -EROFS);
    expect_move(ctx, "/mnt/data/data.txt", "/mnt/data/l", L | GP_MOVE_READONLY, 0, -EROFS);
    expect_move(ctx, "/usr/nosuch", "/mnt/data/l", L | GP_MOVE_READONLY, 0, 0);
    expect_move(ctx, "/usr/bin/sh", "/mnt/data/data.txt", L | GP_MOVE_READONLY, 0, 0);
    /* linkat(fd, "", ..., AT_EMPTY_PATH): the descriptor's file exists, even if its name is gone */
    expect_move(ctx, "/usr/gone (deleted)", "/mnt/data/l", L | GP_MOVE_OLD_FD, 0, -EXDEV);
    expect_move(ctx, "/usr/gone (deleted)", "/usr/l", L | GP_MOVE_OLD_FD, 0, 0);
    expect_move(ctx, "/mnt/data/gone", "/mnt/data/l", L | GP_MOVE_OLD_FD | GP_MOVE_READONLY, 0, -EROFS);
    expect_move(ctx, "/usr/gone", "/mnt/data/l", L, 0, 0); /* by name: the kernel's ENOENT */
}

/* gp_canonical_dir: what the walk saw of the final name, against what stat says of its host path. */
static void test_canonical_dir(const struct gp_context *ctx)
{
    static const struct {
        const char *path, *canon;
        int rc;
    } cases[] = {
        {"/usr/lib", "/usr/lib", 0},            /* a directory */
        {"/lib", "/usr/lib", 0},                /* a symlink to one, followed */
        {"/usr//bin/", "/usr/bin", 0},          /* extra slashes */
        {"/usr/bin/sh", "/usr/bin/sh", -ENOTDIR}, /* a file */
        {"/libc", "/usr/lib/libc.so.6", -ENOTDIR},
        {"/usr/gone", "/usr/gone", 1},          /* missing: left to the caller */
        {"/usr/lib/..", "/usr", 1},             /* after "..": not looked at last */
        {"/slash", "/", 1},                     /* the root: never looked at */
        {"/", "/", 1},
        {"/usr/bin/sh/x", NULL, -ENOTDIR},      /* an error of the walk */
    };
    char out[PATH_MAX], name[2 * PATH_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = gp_canonical_dir(ctx, cases[i].path, out, sizeof(out));

        snprintf(name, sizeof(name), "canonical_dir(%s) is %s, rc %d", cases[i].path,
                 cases[i].canon ? cases[i].canon : "an error", cases[i].rc);
        ok(rc == cases[i].rc && (!cases[i].canon || strcmp(out, cases[i].canon) == 0), name,
           rc == cases[i].rc ? out : "wrong return code");
    }
    ok(gp_canonical_dir(ctx, out, out, sizeof(out)) == -EINVAL, "canonical_dir refuses an overlapping out", NULL);
}

int main(void)
{
    struct gp_context ctx;

    build_tree();
    if (gp_context_init(&ctx, root) != 0) {
        printf("Bail out! gp_context_init(%s) failed\n", root);
        return 1;
    }
    test_forward(&ctx);
    test_chain_limit(&ctx);
    test_cwd(&ctx);
    test_parent(&ctx);
    test_bindings(&ctx);
    test_moves(&ctx);
    test_canonical_dir(&ctx);
    gp_context_destroy(&ctx);
    test_mount_order();
    test_host_root();
    test_self();
    rm_tree(tmp);
    printf("1..%d\n", n_tests);
    if (n_failed)
        printf("# %d of %d failed\n", n_failed, n_tests);
    return n_failed ? 1 : 0;
}

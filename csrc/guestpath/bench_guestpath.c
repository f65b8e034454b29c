/* Benchmark: nanoseconds per gp_to_host call on typical paths.
 *
 *   make -C csrc/guestpath bench                 a small merged-usr tree made in $TMPDIR
 *   make -C csrc/guestpath bench_guestpath && ./bench_guestpath /path/to/debootstrap/rootfs
 *
 * For scale it also times one lstat and one stat of the resulting host path, and realpath(3)
 * of it: a per-component walk can never be cheaper than the kernel's own lookup. */
#define _GNU_SOURCE
#include "guestpath.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ITERATIONS 30000 /* per round */
#define ROUNDS 9          /* the median round is reported: this VM is noisy */

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int mkpath(const char *root, const char *rel, int kind, const char *target)
{
    char p[PATH_MAX];

    if ((size_t)snprintf(p, sizeof(p), "%s/%s", root, rel) >= sizeof(p))
        return -ENAMETOOLONG;
    if (kind == 'd')
        return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
    if (kind == 'l')
        return symlink(target, p) < 0 && errno != EEXIST ? -errno : 0;
    {
        int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

        if (fd < 0)
            return -errno;
        close(fd);
    }
    return 0;
}

static int make_tree(const char *root)
{
    static const struct {
        const char *rel;
        int kind;
        const char *target;
    } items[] = {
        {"usr", 'd', NULL},
        {"usr/lib", 'd', NULL},
        {"usr/lib/x86_64-linux-gnu", 'd', NULL},
        {"usr/lib/x86_64-linux-gnu/libc.so.6", 'f', NULL},
        {"usr/lib64", 'd', NULL},
        {"usr/lib64/ld-linux-x86-64.so.2", 'l', "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
        {"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 'f', NULL},
        {"usr/bin", 'd', NULL},
        {"usr/bin/ls", 'f', NULL},
        {"usr/sbin", 'd', NULL},
        {"etc", 'd', NULL},
        {"etc/passwd", 'f', NULL},
        {"lib", 'l', "usr/lib"},
        {"lib64", 'l', "usr/lib64"},
        {"bin", 'l', "usr/bin"},
        {"sbin", 'l', "usr/sbin"},
    };

    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        int rc = mkpath(root, items[i].rel, items[i].kind, items[i].target);

        if (rc < 0) {
            fprintf(stderr, "bench: cannot create %s/%s: %s\n", root, items[i].rel, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

enum op { OP_GP, OP_LSTAT, OP_STAT, OP_REALPATH };

/* Median over ROUNDS of the ns per call of one operation. */
static double time_op(enum op op, const struct gp_context *ctx, const char *path, int flags,
                      const char *host)
{
    double rounds[ROUNDS];
    char out[PATH_MAX];
    struct stat st;

    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();

        for (int i = 0; i < ITERATIONS; i++) {
            switch (op) {
            case OP_GP:
                (void)gp_to_host(ctx, path, flags, out, sizeof(out));
                break;
            case OP_LSTAT:
                (void)lstat(host, &st);
                break;
            case OP_STAT:
                (void)stat(host, &st);
                break;
            case OP_REALPATH:
                (void)!realpath(host, out);
                break;
            }
        }
        rounds[r] = (now_ns() - t0) / ITERATIONS;
    }
    qsort(rounds, ROUNDS, sizeof(rounds[0]), cmp_double);
    return rounds[ROUNDS / 2];
}

static void bench_one(const struct gp_context *ctx, const char *path, int flags)
{
    char host[PATH_MAX];
    int rc = gp_to_host(ctx, path, flags, host, sizeof(host));

    if (rc < 0) {
        printf("%-40s error %s\n", path, strerror(-rc));
        return;
    }
    printf("%-40s %-8s %6.0f ns  (lstat %4.0f, stat %4.0f, realpath %5.0f ns)\n", path,
           flags ? "follow" : "nofollow", time_op(OP_GP, ctx, path, flags, host),
           time_op(OP_LSTAT, ctx, path, flags, host), time_op(OP_STAT, ctx, path, flags, host),
           time_op(OP_REALPATH, ctx, path, flags, host));
}

int main(int argc, char **argv)
{
    char tmp[PATH_MAX] = "";
    const char *root = argc > 1 ? argv[1] : NULL;
    struct gp_context ctx;
    int rc;

    if (!root) {
        const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s/gp-bench-XXXXXX", base) >= sizeof(tmp) || !mkdtemp(tmp)) {
            fprintf(stderr, "bench: mkdtemp: %s\n", strerror(errno));
            return 1;
        }
        if (make_tree(tmp) < 0)
            return 1;
        root = tmp;
    }
    rc = gp_context_init(&ctx, root);
    if (rc < 0) {
        fprintf(stderr, "bench: root %s: %s\n", root, strerror(-rc));
        return 1;
    }
    if (gp_add_binding(&ctx, "/proc", "/proc") < 0 || gp_add_binding(&ctx, "/dev", "/dev") < 0 ||
        gp_add_binding(&ctx, "/sys", "/sys") < 0 || gp_add_binding(&ctx, "/tmp", "/tmp") < 0) {
        fprintf(stderr, "bench: could not add the usual bindings\n");
        return 1;
    }
    printf("root %s, 4 bindings, median of %d rounds of %d calls\n", root, ROUNDS, ITERATIONS);
    bench_one(&ctx, "/usr/lib/x86_64-linux-gnu/libc.so.6", GP_FOLLOW_LAST);
    bench_one(&ctx, "/lib/x86_64-linux-gnu/libc.so.6", GP_FOLLOW_LAST);
    bench_one(&ctx, "/lib64/ld-linux-x86-64.so.2", GP_FOLLOW_LAST);
    bench_one(&ctx, "/usr/bin/ls", 0);
    bench_one(&ctx, "/etc/passwd", GP_FOLLOW_LAST);
    bench_one(&ctx, "/proc/self/status", GP_FOLLOW_LAST);
    gp_set_cwd(&ctx, "/usr/lib");
    bench_one(&ctx, "x86_64-linux-gnu/libc.so.6", GP_FOLLOW_LAST);
    gp_context_destroy(&ctx);
    if (tmp[0]) {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", tmp);
    }
    return 0;
}

/* hpcbox-userns: the error convention, small file helpers and the argv spec the Python side
 * hands over (no JSON here). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hpcbox_userns.h"

static char usr_error[1024];

/* Record "context: strerror(errno)" and return -1, so callers can `return usr_fail(...)`. */
__attribute__((format(printf, 1, 2))) int usr_fail(const char *fmt, ...)
{
    int saved = errno;
    char context[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof(context), fmt, ap);
    va_end(ap);
    if (saved)
        snprintf(usr_error, sizeof(usr_error), "%s: %s", context, strerror(saved));
    else
        snprintf(usr_error, sizeof(usr_error), "%s", context);
    errno = saved;
    return -1;
}

void usr_report(void)
{
    dprintf(STDERR_FILENO, "hpcbox-userns: %s\n", usr_error);
}

void usr_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

int write_file(const char *path, const char *text)
{
    AUTO_CLOSE int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return usr_fail("open %s", path);
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        return usr_fail("write %s", path);
    return 0;
}

static int parse_long(const char *text, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || !*text || *end)
        return -1;
    *out = value;
    return 0;
}

/* "--newuidmap HELPER 0,1001,1,1,100000,65536": HELPER's argv, the runner's pid in second place. */
static int split_map_list(struct usr_spec *spec, int which, const char *helper, const char *given)
{
    char **out = spec->map_argv[which];
    char *list = strdup(given);
    if (!list)
        return usr_fail("strdup");
    size_t n = 0;
    snprintf(spec->map_pid, sizeof(spec->map_pid), "%ld", (long)getpid());
    out[n++] = (char *)helper;
    out[n++] = spec->map_pid;
    for (char *save = NULL, *word = strtok_r(list, ",", &save); word; word = strtok_r(NULL, ",", &save)) {
        long value;
        if (parse_long(word, &value) < 0 || value < 0)
            return usr_fail("bad id map '%s' for %s: give numbers separated by commas", word, helper);
        if (n + 1 >= MAX_MAP_ARGS)
            return usr_fail("id map for %s too long (at most %d numbers)", helper, MAX_MAP_ARGS - 3);
        out[n++] = word;
    }
    if (n < 5 || (n - 2) % 3)
        return usr_fail("id map for %s: give triples (inside, outside, count)", helper);
    out[n] = NULL;
    return 0;
}

int parse_args(int argc, char **argv, struct usr_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->sync_read_fd = spec->sync_write_fd = spec->userns_fd = spec->map_go_fd = -1;
    spec->with_sys = 1;
    int i = 1;
    for (; i < argc; i++) {
        const char *opt = argv[i];
        int left = argc - i - 1;
        if (!strcmp(opt, "--")) {
            i++;
            break;
        } else if (!strcmp(opt, "--probe")) {
            spec->probe = 1;
        } else if (!strcmp(opt, "--net-none")) {
            spec->new_net = 1;
        } else if (!strcmp(opt, "--readonly")) {
            spec->readonly = 1;
        } else if (!strcmp(opt, "--no-new-privs")) {
            spec->no_new_privs = 1;
        } else if (!strcmp(opt, "--host-pts")) {
            spec->host_pts = 1;
        } else if (!strcmp(opt, "--fake-chown")) {
            spec->fake_chown = 1;
        } else if (!strcmp(opt, "--external-map")) {
            spec->full_map = 1;
        } else if (!strcmp(opt, "--no-sys")) {
            spec->with_sys = 0;
        } else if (!strcmp(opt, "--host-pid")) {
            spec->host_pid = 1;
        } else if (!strcmp(opt, "--host-ipc")) {
            spec->host_ipc = 1;
        } else if (!strcmp(opt, "--userns-fd") && left >= 1) {
            long fd;
            if (parse_long(argv[++i], &fd) || fd < 0 || fd > 65535)
                return usr_fail("bad --userns-fd value '%s': give an open file descriptor", argv[i]);
            spec->userns_fd = (int)fd;
        } else if (!strcmp(opt, "--rootfs") && left >= 1) {
            spec->rootfs = argv[++i];
        } else if (!strcmp(opt, "--hostname") && left >= 1) {
            spec->hostname = argv[++i];
        } else if (!strcmp(opt, "--cwd") && left >= 1) {
            spec->cwd = argv[++i];
        } else if (!strcmp(opt, "--overlay") && left >= 1) {
            spec->overlay = argv[++i];
        } else if ((!strcmp(opt, "--uid") || !strcmp(opt, "--gid")) && left >= 1) {
            long *out = opt[2] == 'u' ? &spec->uid : &spec->gid;
            if (parse_long(argv[++i], out) || *out < 0)
                return usr_fail("bad %s value '%s': give a number >= 0", opt, argv[i]);
        } else if (!strcmp(opt, "--sync") && left >= 2) {
            long r, w;
            if (parse_long(argv[i + 1], &r) || parse_long(argv[i + 2], &w))
                return usr_fail("bad --sync fds '%s %s': give two numbers", argv[i + 1], argv[i + 2]);
            spec->sync_read_fd = (int)r;
            spec->sync_write_fd = (int)w;
            i += 2;
        } else if ((!strcmp(opt, "--newuidmap") || !strcmp(opt, "--newgidmap")) && left >= 2) {
            if (split_map_list(spec, opt[5] == 'u' ? 0 : 1, argv[i + 1], argv[i + 2]) < 0)
                return -1;
            i += 2;
        } else if (!strcmp(opt, "--single-map-file") && left >= 3) {
            spec->note_root = argv[i + 1];
            spec->note_path = argv[i + 2];
            spec->note_text = argv[i + 3];
            i += 3;
        } else if (!strcmp(opt, "--mount") && left >= 5) {
            if (spec->n_mounts >= MAX_MOUNTS)
                return usr_fail("too many mounts (at most %d)", MAX_MOUNTS);
            struct usr_mount *m = &spec->mounts[spec->n_mounts++];
            char *end = NULL;
            m->source = argv[i + 1];
            m->target = argv[i + 2];
            m->fstype = argv[i + 3];
            errno = 0;
            m->flags = strtoul(argv[i + 4], &end, 10);
            if (errno || !*argv[i + 4] || *end)
                return usr_fail("bad mount flags '%s' for %s", argv[i + 4], m->target);
            m->data = argv[i + 5];
            i += 5;
        } else {
            return usr_fail("unknown or incomplete option '%s' (this runner is driven by hpcbox_engine_runc)",
                            opt);
        }
    }
    spec->argv = argv + i;
    if (!spec->probe && (!spec->rootfs || !*spec->argv))
        return usr_fail("usage: hpcbox-userns --rootfs DIR [options] -- PROGRAM [ARGS...]");
    if (!spec->map_argv[0][0] != !spec->map_argv[1][0])
        return usr_fail("--newuidmap and --newgidmap go together");
    if (spec->map_argv[0][0] && (spec->userns_fd >= 0 || spec->full_map))
        return usr_fail("--newuidmap is for a new user namespace whose ids the caller does not map");
    return 0;
}

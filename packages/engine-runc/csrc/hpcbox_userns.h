/* hpcbox_userns.h: what the parts of hpcbox-userns share (see hpcbox_userns.c for the whole):
 * the spec parsed from argv, the error convention (usr_fail records, usr_report prints one line),
 * and each part's entry points. */
#ifndef HPCBOX_USERNS_H
#define HPCBOX_USERNS_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define EXIT_RUNTIME 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127
#define MAX_MOUNTS 256
#define MAX_MAP_ARGS 64 /* newuidmap/newgidmap: the helper, the pid, up to 20 triples, NULL */

extern char **environ;

struct usr_mount {
    const char *source;
    const char *target; /* absolute host path, already resolved inside the rootfs */
    const char *fstype;
    unsigned long flags;
    const char *data;
};

struct usr_spec {
    int probe;
    const char *rootfs;
    const char *hostname;
    const char *cwd;
    const char *overlay; /* "lowerdir=...,upperdir=...,workdir=..." mounted on rootfs */
    long uid, gid;
    int new_net, readonly, no_new_privs, with_sys, host_pts;
    int host_pid, host_ipc; /* stay in the caller's pid/ipc namespaces (MPI ranks of one job) */
    int userns_fd;          /* join this user namespace (its ids already mapped) instead of a new one */
    int fake_chown; /* --fake-chown: chown to unmapped ids succeeds and changes nothing */
    int full_map;   /* --external-map: the caller writes the id maps (newuidmap), setgroups allowed */
    int sync_read_fd, sync_write_fd;
    /* --newuidmap/--newgidmap HELPER LIST: the runner's own helpers write the full map (no caller round) */
    char *map_argv[2][MAX_MAP_ARGS];
    char map_pid[24];
    pid_t mapper[2];
    int map_go_fd;
    /* --single-map-file ROOT PATH TEXT: written (unless there) when the full map fails and one id is mapped */
    const char *note_root, *note_path, *note_text;
    size_t n_mounts;
    struct usr_mount mounts[MAX_MOUNTS];
    char **argv;
};

/* hpcbox_userns_spec.c: errors, small file helpers, the argv spec */
__attribute__((format(printf, 1, 2))) int usr_fail(const char *fmt, ...);
void usr_report(void);
void usr_close(int *fd);
#define AUTO_CLOSE __attribute__((cleanup(usr_close)))
int write_file(const char *path, const char *text);
int parse_args(int argc, char **argv, struct usr_spec *spec);

/* hpcbox_userns_ids.c: the user namespace, its id maps, the chown filter for unmapped ids */
int start_mappers(struct usr_spec *spec, const sigset_t *old_mask);
int enter_namespaces(struct usr_spec *spec);
int sync_with_caller(const struct usr_spec *spec);
int install_chown_filter(void);

/* hpcbox_userns_mounts.c: the container's filesystem */
int setup_root(const struct usr_spec *spec);

#endif

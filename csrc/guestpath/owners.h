/* owners: the ownership record of a container (fakeroot-like), shared by the ptrace and preload
 * engines. Without privileges chown cannot change a file's owner, so under root emulation the
 * engines write down what chown set (and what mknod of a device asked for) and show it in the
 * stat family's answers: `stat` after `chown` shows what was set, in every process and in later
 * runs. Files without a record show the caller's ids as the container user's (as a user
 * namespace maps them), so files created by the emulated root look root-owned.
 *
 * The record is one file per container (the engine creates it beside the rootfs): a 64-byte
 * header (magic, record count) and fixed-size records appended under an flock; a later record of
 * the same (device, inode) replaces an earlier one. Readers map the header and read new records
 * when the count grows, so a lookup costs no system call while nothing changed. A removed file's
 * inode reused by a new file can inherit its record (as with fakeroot); the engines drop a record
 * when they see the last link of its file removed. */
#ifndef HPCBOX_GUESTPATH_OWNERS_H
#define HPCBOX_GUESTPATH_OWNERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OWNERS_NONE 0xffffffffu /* a field that the record does not set */

struct owner_rec {
    uint64_t dev, ino;
    uint32_t uid, gid;   /* OWNERS_NONE: not set */
    uint32_t mode;       /* file type and permissions to show (mknod of a device), 0: the file's */
    uint32_t gone;       /* 1: the file was removed (the record no longer applies) */
    uint64_t rdev;
};

struct owners {
    int fd;                      /* -1: no record (nothing is recorded or shown) */
    const volatile uint64_t *count; /* in the mapped header */
    uint64_t seen;               /* records read into the table */
    struct owner_rec *table;     /* open addressing on (dev, ino) */
    size_t cap, used;
};

/* Open (create when `create`) the record file; 0 or -errno. o is usable (empty) on failure. */
int owners_open(struct owners *o, const char *path, bool create);
void owners_close(struct owners *o);
/* Whether any record exists (after reading new ones). */
bool owners_any(struct owners *o);
/* The current record of (dev, ino), or NULL (none, or the file was removed). */
const struct owner_rec *owners_find(struct owners *o, uint64_t dev, uint64_t ino);
/* Append a record (uid/gid OWNERS_NONE keep the previous record's values). 0 or -errno. */
int owners_set(struct owners *o, uint64_t dev, uint64_t ino, uint32_t uid, uint32_t gid, uint32_t mode,
               uint64_t rdev);
/* The file (dev, ino) lost its last link: forget its record (only written when there is one). */
int owners_forget(struct owners *o, uint64_t dev, uint64_t ino);

/* Who the caller is and whom it stands for: the caller's own ids show as uid/gid. */
struct owners_view {
    uint32_t real_uid, real_gid;
    uint32_t uid, gid;
};

/* Rewrite the owner, group (and, for a recorded device node, mode and rdev; either may be NULL)
 * of the file (dev, ino) as the container shows them. */
void owners_show(struct owners *o, const struct owners_view *v, uint64_t dev, uint64_t ino, uint32_t *uid,
                 uint32_t *gid, uint32_t *mode, uint64_t *rdev);

/* chown: record (uid, gid) for the file whose real owner is (real_uid, real_gid), OWNERS_NONE
 * keeping what is shown; nothing is written when that is what the file shows already. */
int owners_chown(struct owners *o, const struct owners_view *v, uint64_t dev, uint64_t ino, uint32_t real_uid,
                 uint32_t real_gid, uint32_t uid, uint32_t gid);

#endif

/* owners: the ownership record (see owners.h). System calls go to the kernel directly: the
 * preload library must not translate its own record's host path. */
#define _GNU_SOURCE
#include "owners.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define OWNERS_MAGIC "HPCBOXOWNERS1\n"
#define OWNERS_HEADER 64
#define OWNERS_COUNT_AT 16  /* the uint64_t record count in the header */

static int sys_open(const char *path, int flags, int mode)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode);

    return fd < 0 ? -errno : (int)fd;
}

static int write_header(int fd)
{
    char head[OWNERS_HEADER] = {0};
    struct stat st;

    if (syscall(SYS_fstat, fd, &st) < 0)
        return -errno;
    if (st.st_size >= OWNERS_HEADER)
        return 0;
    memcpy(head, OWNERS_MAGIC, sizeof(OWNERS_MAGIC) - 1);
    return pwrite(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) ? 0 : -EIO;
}

int owners_open(struct owners *o, const char *path, bool create)
{
    char magic[sizeof(OWNERS_MAGIC) - 1];
    void *head;
    int fd, rc = 0;

    memset(o, 0, sizeof(*o));
    o->fd = -1;
    fd = sys_open(path, O_RDWR | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        return fd;
    if (create) {
        if (flock(fd, LOCK_EX) < 0)
            rc = -errno;
        if (rc == 0)
            rc = write_header(fd);
        flock(fd, LOCK_UN);
    }
    if (rc == 0 && pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic))
        rc = -EINVAL;
    if (rc == 0 && memcmp(magic, OWNERS_MAGIC, sizeof(magic)) != 0)
        rc = -EINVAL;
    head = rc == 0 ? mmap(NULL, OWNERS_HEADER, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (rc == 0 && head == MAP_FAILED)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    o->fd = fd;
    o->count = (const volatile uint64_t *)((const char *)head + OWNERS_COUNT_AT);
    return 0;
}

void owners_close(struct owners *o)
{
    if (o->fd >= 0) {
        munmap((void *)((const char *)o->count - OWNERS_COUNT_AT), OWNERS_HEADER);
        close(o->fd);
    }
    free(o->table);
    memset(o, 0, sizeof(*o));
    o->fd = -1;
}

static size_t slot_of(const struct owners *o, uint64_t dev, uint64_t ino)
{
    uint64_t h = (ino * 0x9e3779b97f4a7c15ull) ^ (dev * 0xc2b2ae3d27d4eb4full);

    return (size_t)(h >> 17) & (o->cap - 1);
}

static struct owner_rec *slot(struct owners *o, uint64_t dev, uint64_t ino)
{
    size_t i = slot_of(o, dev, ino);

    while (o->table[i].ino || o->table[i].dev) {
        if (o->table[i].dev == dev && o->table[i].ino == ino)
            return &o->table[i];
        i = (i + 1) & (o->cap - 1);
    }
    return &o->table[i];
}

static int grow(struct owners *o)
{
    struct owner_rec *old = o->table;
    size_t old_cap = o->cap, cap = old_cap ? old_cap * 2 : 256;
    struct owner_rec *table = calloc(cap, sizeof(*table));

    if (!table)
        return -ENOMEM;
    o->table = table;
    o->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].ino || old[i].dev)
            *slot(o, old[i].dev, old[i].ino) = old[i];
    }
    free(old);
    return 0;
}

static int put(struct owners *o, const struct owner_rec *r)
{
    struct owner_rec *s;

    if ((o->used + 1) * 2 > o->cap && grow(o) < 0)
        return -ENOMEM;
    s = slot(o, r->dev, r->ino);
    if (!s->ino && !s->dev)
        o->used++;
    *s = *r;
    return 0;
}

/* Read the records other processes (or this one) appended since the last look. */
static void sync_records(struct owners *o)
{
    uint64_t count = o->fd >= 0 ? *o->count : 0;

    while (o->seen < count) {
        struct owner_rec batch[64];
        uint64_t n = count - o->seen < 64 ? count - o->seen : 64;
        ssize_t got = pread(o->fd, batch, n * sizeof(batch[0]), OWNERS_HEADER + (off_t)(o->seen * sizeof(batch[0])));

        if (got < (ssize_t)sizeof(batch[0]))
            return;
        n = (uint64_t)got / sizeof(batch[0]);
        for (uint64_t i = 0; i < n; i++) {
            if (put(o, &batch[i]) < 0)
                return;
        }
        o->seen += n;
    }
}

bool owners_any(struct owners *o)
{
    if (o->fd < 0)
        return false;
    sync_records(o);
    return o->used > 0;
}

const struct owner_rec *owners_find(struct owners *o, uint64_t dev, uint64_t ino)
{
    const struct owner_rec *r;

    if (!owners_any(o))
        return NULL;
    r = slot(o, dev, ino);
    return (r->ino || r->dev) && !r->gone ? r : NULL;
}

static int append(struct owners *o, struct owner_rec *r)
{
    uint64_t count;
    int rc = 0;

    if (o->fd < 0)
        return -EBADF;
    if (flock(o->fd, LOCK_EX) < 0)
        return -errno;
    sync_records(o);
    count = *o->count;
    if (pwrite(o->fd, r, sizeof(*r), OWNERS_HEADER + (off_t)(count * sizeof(*r))) != (ssize_t)sizeof(*r))
        rc = -EIO;
    count++;
    if (rc == 0 && pwrite(o->fd, &count, sizeof(count), OWNERS_COUNT_AT) != (ssize_t)sizeof(count))
        rc = -EIO;
    flock(o->fd, LOCK_UN);
    if (rc == 0)
        sync_records(o);
    return rc;
}

int owners_set(struct owners *o, uint64_t dev, uint64_t ino, uint32_t uid, uint32_t gid, uint32_t mode,
               uint64_t rdev)
{
    const struct owner_rec *prev = owners_find(o, dev, ino);
    struct owner_rec r = {.dev = dev, .ino = ino, .uid = uid, .gid = gid, .mode = mode, .rdev = rdev};

    if (prev) {
        if (uid == OWNERS_NONE)
            r.uid = prev->uid;
        if (gid == OWNERS_NONE)
            r.gid = prev->gid;
        if (!mode) {
            r.mode = prev->mode;
            r.rdev = prev->rdev;
        }
    }
    if (!r.dev && !r.ino)
        return -EINVAL;
    return append(o, &r);
}

int owners_forget(struct owners *o, uint64_t dev, uint64_t ino)
{
    struct owner_rec r = {.dev = dev, .ino = ino, .uid = OWNERS_NONE, .gid = OWNERS_NONE, .gone = 1};

    if (!owners_find(o, dev, ino))
        return 0;
    return append(o, &r);
}

void owners_show(struct owners *o, const struct owners_view *v, uint64_t dev, uint64_t ino, uint32_t *uid,
                 uint32_t *gid, uint32_t *mode, uint64_t *rdev)
{
    const struct owner_rec *r;

    if (*uid == v->real_uid)
        *uid = v->uid;
    if (*gid == v->real_gid)
        *gid = v->gid;
    r = owners_find(o, dev, ino);
    if (!r)
        return;
    if (r->uid != OWNERS_NONE)
        *uid = r->uid;
    if (r->gid != OWNERS_NONE)
        *gid = r->gid;
    if (r->mode && mode && rdev) {
        *mode = r->mode;
        *rdev = r->rdev;
    }
}

int owners_chown(struct owners *o, const struct owners_view *v, uint64_t dev, uint64_t ino, uint32_t real_uid,
                 uint32_t real_gid, uint32_t uid, uint32_t gid)
{
    uint32_t shown_uid = real_uid, shown_gid = real_gid;

    owners_show(o, v, dev, ino, &shown_uid, &shown_gid, NULL, NULL);
    /* the caller's own ids stand for the container user's, as stat shows them (a program that
     * read them where the engine does not map them, e.g. fstat under ptrace, gives them back) */
    if (uid == v->real_uid)
        uid = v->uid;
    if (gid == v->real_gid)
        gid = v->gid;
    if (uid == OWNERS_NONE)
        uid = shown_uid;
    if (gid == OWNERS_NONE)
        gid = shown_gid;
    if (uid == shown_uid && gid == shown_gid)
        return 0; /* shown so already (dpkg's chown to root of every file it unpacks) */
    return owners_set(o, dev, ino, uid, gid, 0, 0);
}

/* creds: emulated user and group ids, changed by the set*id family with the kernel's rules
 * (credentials(7)), for the engines that emulate the container's user without privileges (the
 * ptrace tracer per thread, the preload library per process). Header-only: both engines include
 * it. "Privileged" is an effective uid of 0 (CAP_SETUID/CAP_SETGID follow the uid here); an
 * argument of -1 (as a 32-bit id) means "unchanged". The functions return 0 or -EPERM/-EINVAL. */
#ifndef HPCBOX_GUESTPATH_CREDS_H
#define HPCBOX_GUESTPATH_CREDS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define CREDS_MAX_GROUPS 64
#define CREDS_KEEP 0xffffffffu

struct creds {
    uint32_t ruid, euid, suid, fsuid;
    uint32_t rgid, egid, sgid, fsgid;
    uint32_t groups[CREDS_MAX_GROUPS];
    int n_groups;
};

/* uid and gid everywhere, and gid as the only supplementary group. */
static inline void creds_init(struct creds *c, uint32_t uid, uint32_t gid)
{
    c->ruid = c->euid = c->suid = c->fsuid = uid;
    c->rgid = c->egid = c->sgid = c->fsgid = gid;
    c->groups[0] = gid;
    c->n_groups = 1;
}

static inline bool creds_keep_(long v)
{
    return (uint32_t)v == CREDS_KEEP;
}

/* v is unchanged (-1) or one of the three ids an unprivileged process may switch between */
static inline bool creds_may_(long v, uint32_t a, uint32_t b, uint32_t c)
{
    return creds_keep_(v) || (uint32_t)v == a || (uint32_t)v == b || (uint32_t)v == c;
}

static inline void creds_set3_(uint32_t *r, uint32_t *e, uint32_t *s, uint32_t *fs, long nr, long ne,
                               long ns)
{
    if (!creds_keep_(nr))
        *r = (uint32_t)nr;
    if (!creds_keep_(ne))
        *e = (uint32_t)ne;
    if (!creds_keep_(ns))
        *s = (uint32_t)ns;
    *fs = *e;
}

static inline int creds_setresuid(struct creds *c, long r, long e, long s)
{
    if (c->euid != 0 && !(creds_may_(r, c->ruid, c->euid, c->suid) && creds_may_(e, c->ruid, c->euid, c->suid) &&
                          creds_may_(s, c->ruid, c->euid, c->suid)))
        return -EPERM;
    creds_set3_(&c->ruid, &c->euid, &c->suid, &c->fsuid, r, e, s);
    return 0;
}

static inline int creds_setresgid(struct creds *c, long r, long e, long s)
{
    if (c->euid != 0 && !(creds_may_(r, c->rgid, c->egid, c->sgid) && creds_may_(e, c->rgid, c->egid, c->sgid) &&
                          creds_may_(s, c->rgid, c->egid, c->sgid)))
        return -EPERM;
    creds_set3_(&c->rgid, &c->egid, &c->sgid, &c->fsgid, r, e, s);
    return 0;
}

/* setreuid/setregid: the real id may become the effective one; the saved id follows the new
 * effective id when the real id is set or the effective id changes to other than the old real. */
static inline int creds_setre_(uint32_t *r, uint32_t *e, uint32_t *s, uint32_t *fs, bool priv, long nr, long ne)
{
    uint32_t old_r = *r;

    if (!priv && ((!creds_keep_(nr) && (uint32_t)nr != *r && (uint32_t)nr != *e) ||
                  !creds_may_(ne, *r, *e, *s)))
        return -EPERM;
    if (!creds_keep_(nr))
        *r = (uint32_t)nr;
    if (!creds_keep_(ne))
        *e = (uint32_t)ne;
    if (!creds_keep_(nr) || (!creds_keep_(ne) && (uint32_t)ne != old_r))
        *s = *e;
    *fs = *e;
    return 0;
}

static inline int creds_setreuid(struct creds *c, long r, long e)
{
    return creds_setre_(&c->ruid, &c->euid, &c->suid, &c->fsuid, c->euid == 0, r, e);
}

static inline int creds_setregid(struct creds *c, long r, long e)
{
    return creds_setre_(&c->rgid, &c->egid, &c->sgid, &c->fsgid, c->euid == 0, r, e);
}

/* setuid/setgid: privileged, all ids; else the effective id to the real or saved one. */
static inline int creds_set1_(uint32_t *r, uint32_t *e, uint32_t *s, uint32_t *fs, bool priv, long v)
{
    if (creds_keep_(v))
        return -EINVAL;
    if (priv) {
        *r = *e = *s = *fs = (uint32_t)v;
        return 0;
    }
    if ((uint32_t)v != *r && (uint32_t)v != *s)
        return -EPERM;
    *e = *fs = (uint32_t)v;
    return 0;
}

static inline int creds_setuid(struct creds *c, long u)
{
    return creds_set1_(&c->ruid, &c->euid, &c->suid, &c->fsuid, c->euid == 0, u);
}

static inline int creds_setgid(struct creds *c, long g)
{
    return creds_set1_(&c->rgid, &c->egid, &c->sgid, &c->fsgid, c->euid == 0, g);
}

/* setgroups: privileged only; at most CREDS_MAX_GROUPS (EINVAL beyond, like NGROUPS_MAX). */
static inline int creds_setgroups(struct creds *c, long n, const uint32_t *list)
{
    if (c->euid != 0)
        return -EPERM;
    if (n < 0 || n > CREDS_MAX_GROUPS)
        return -EINVAL;
    for (long i = 0; i < n; i++)
        c->groups[i] = list[i];
    c->n_groups = (int)n;
    return 0;
}

#endif

/* rootemu: the configured uid/gid (root by default) without privileges. The get*id family
 * answers from per-thread emulated credentials, the set*id family changes them with the kernel's
 * rules, chown-like calls succeed without changing owners (their ids become -1, "unchanged"),
 * device nodes are created as regular files, and uname can report the container's hostname. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#define KEEP CREDS_KEEP  /* -1 as a 32-bit id: "unchanged" */

static long put_three(pid_t tid, const struct regs *regs, uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t v[3] = {a, b, c};

    for (int i = 0; i < 3; i++) {
        int rc = mem_write(tid, regs_arg(regs, i), &v[i], sizeof(v[i]));

        if (rc < 0)
            return -EFAULT;
    }
    return 0;
}

static long getgroups_emu(pid_t tid, const struct regs *regs, const struct creds *c)
{
    long size = (long)(int)regs_arg(regs, 0);

    if (size < 0)
        return -EINVAL;
    if (size == 0)
        return c->n_groups;
    if (size < c->n_groups)
        return -EINVAL;
    if (mem_write(tid, regs_arg(regs, 1), c->groups, (size_t)c->n_groups * sizeof(uint32_t)) < 0)
        return -EFAULT;
    return c->n_groups;
}

static long setgroups_emu(pid_t tid, const struct regs *regs, struct creds *c)
{
    long n = (long)(int)regs_arg(regs, 0);
    uint32_t list[CREDS_MAX_GROUPS];

    if (c->euid != 0)
        return -EPERM;
    if (n < 0 || n > CREDS_MAX_GROUPS)
        return -EINVAL;
    if (n > 0 && mem_read(tid, regs_arg(regs, 1), list, (size_t)n * sizeof(uint32_t)) < 0)
        return -EFAULT;
    return creds_setgroups(c, n, list);
}

static long setfs(uint32_t *fs, uint32_t v, const uint32_t *r, const uint32_t *e, const uint32_t *s,
                  bool privileged)
{
    uint32_t old = *fs;

    if (privileged || v == *r || v == *e || v == *s || v == old)
        *fs = v;
    return old;
}

int rootemu_ids(struct tracer *t, struct stop *s)
{
    struct creds *c = &s->proc->creds;
    const char *n = s->sc->name;
    long a0 = (long)regs_arg(&s->regs, 0), a1 = (long)regs_arg(&s->regs, 1);
    long a2 = (long)regs_arg(&s->regs, 2), ret;

    (void)t;
    if (strcmp(n, "getuid") == 0)
        ret = c->ruid;
    else if (strcmp(n, "geteuid") == 0)
        ret = c->euid;
    else if (strcmp(n, "getgid") == 0)
        ret = c->rgid;
    else if (strcmp(n, "getegid") == 0)
        ret = c->egid;
    else if (strcmp(n, "getresuid") == 0)
        ret = put_three(s->tid, &s->regs, c->ruid, c->euid, c->suid);
    else if (strcmp(n, "getresgid") == 0)
        ret = put_three(s->tid, &s->regs, c->rgid, c->egid, c->sgid);
    else if (strcmp(n, "setuid") == 0)
        ret = creds_setuid(c, a0);
    else if (strcmp(n, "setgid") == 0)
        ret = creds_setgid(c, a0);
    else if (strcmp(n, "setreuid") == 0)
        ret = creds_setreuid(c, a0, a1);
    else if (strcmp(n, "setregid") == 0)
        ret = creds_setregid(c, a0, a1);
    else if (strcmp(n, "setresuid") == 0)
        ret = creds_setresuid(c, a0, a1, a2);
    else if (strcmp(n, "setresgid") == 0)
        ret = creds_setresgid(c, a0, a1, a2);
    else if (strcmp(n, "setfsuid") == 0)
        ret = setfs(&c->fsuid, (uint32_t)a0, &c->ruid, &c->euid, &c->suid, c->euid == 0);
    else if (strcmp(n, "setfsgid") == 0)
        ret = setfs(&c->fsgid, (uint32_t)a0, &c->rgid, &c->egid, &c->sgid, c->euid == 0);
    else if (strcmp(n, "getgroups") == 0)
        ret = getgroups_emu(s->tid, &s->regs, c);
    else if (strcmp(n, "setgroups") == 0)
        ret = setgroups_emu(s->tid, &s->regs, c);
    else
        return 0;
    s->skip = true;
    s->ret = ret;
    return 0;
}

int rootemu_chown(struct tracer *t, struct stop *s)
{
    /* the owner arguments: chown/lchown/fchown (1, 2), fchownat (2, 3) */
    int first = strcmp(s->sc->name, "fchownat") == 0 ? 2 : 1;

    if (!t->cfg.emulate_ids)
        return 0;
    regs_set_arg(&s->regs, first, KEEP);
    regs_set_arg(&s->regs, first + 1, KEEP);
    s->dirty = true;
    return 0;
}

int rootemu_mknod(struct tracer *t, struct stop *s)
{
    int mode_arg = strcmp(s->sc->name, "mknodat") == 0 ? 2 : 1;
    uint64_t mode = regs_arg(&s->regs, mode_arg);

    if (!t->cfg.emulate_ids || !(S_ISCHR(mode) || S_ISBLK(mode)))
        return 0;
    /* no device nodes without privileges: an empty regular file stands in for it */
    regs_set_arg(&s->regs, mode_arg, S_IFREG | (mode & 07777));
    s->dirty = true;
    return 0;
}

int rootemu_uname(struct tracer *t, struct stop *s)
{
    struct utsname u;
    size_t len;

    if (!t->cfg.hostname)
        return 0;
    if (uname(&u) < 0)
        return -errno;
    len = strlen(t->cfg.hostname);
    if (len >= sizeof(u.nodename))
        len = sizeof(u.nodename) - 1;
    memset(u.nodename, 0, sizeof(u.nodename));
    memcpy(u.nodename, t->cfg.hostname, len);
    s->skip = true;
    s->ret = mem_write(s->tid, regs_arg(&s->regs, 0), &u, sizeof(u)) < 0 ? -EFAULT : 0;
    return 0;
}

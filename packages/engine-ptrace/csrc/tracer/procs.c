/* procs: the table of traced threads (see procs.h). */
#define _GNU_SOURCE
#include "procs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static unsigned bucket(pid_t tid)
{
    return (unsigned)tid % PROCS_BUCKETS;
}

void procs_init(struct proc_table *t)
{
    memset(t, 0, sizeof(*t));
}

struct proc *procs_find(const struct proc_table *t, pid_t tid)
{
    for (struct proc *p = t->buckets[bucket(tid)]; p; p = p->next)
        if (p->tid == tid)
            return p;
    return NULL;
}

struct proc *procs_add(struct proc_table *t, pid_t tid, const struct creds *initial)
{
    struct proc *p = procs_find(t, tid);

    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->tid = tid;
    if (initial)
        p->creds = *initial;
    p->next = t->buckets[bucket(tid)];
    t->buckets[bucket(tid)] = p;
    t->count++;
    return p;
}

static void proc_free(struct proc *p)
{
    for (unsigned i = 0; i < sizeof(p->restart) / sizeof(p->restart[0]); i++)
        free(p->restart[i].data);
    free(p->exe);
    free(p->pending_exe);
    free(p->exit_path);
    free(p);
}

void procs_remove(struct proc_table *t, pid_t tid)
{
    struct proc **link = &t->buckets[bucket(tid)];

    for (; *link; link = &(*link)->next) {
        if ((*link)->tid == tid) {
            struct proc *p = *link;

            *link = p->next;
            proc_free(p);
            t->count--;
            return;
        }
    }
}

int procs_inherit(struct proc *child, const struct proc *parent)
{
    char *exe = NULL;

    if (parent->exe && !(exe = strdup(parent->exe)))
        return -ENOMEM;
    free(child->exe);
    child->exe = exe;
    child->creds = parent->creds;
    child->root = parent->root;
    child->owners_filter = parent->owners_filter; /* seccomp filters are inherited */
    child->inherited = true;
    return 0;
}

void procs_each(const struct proc_table *t, void (*fn)(struct proc *p, void *arg), void *arg)
{
    for (unsigned i = 0; i < PROCS_BUCKETS; i++)
        for (struct proc *p = t->buckets[i]; p; p = p->next)
            fn(p, arg);
}

void procs_destroy(struct proc_table *t)
{
    for (unsigned i = 0; i < PROCS_BUCKETS; i++) {
        struct proc *p = t->buckets[i];

        while (p) {
            struct proc *next = p->next;

            proc_free(p);
            p = next;
        }
        t->buckets[i] = NULL;
    }
    t->count = 0;
}

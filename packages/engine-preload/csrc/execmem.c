/* Memory an exec needs until its execve system call, without leaking it into a vfork parent.
 *
 * dash, busybox sh and many spawn helpers run commands with vfork: the child shares the caller's
 * memory until it execs, and after a successful exec none of its code runs again. What the exec
 * plan allocated there (the plan, the loader's argv and environment: ~50 KiB) stayed allocated in
 * the shell, every command (2000 commands: 100 MB). So each allocation here is put on a list of the
 * thread that made it (thread-local: a vfork child shares its parent thread's), marked with the
 * task (kernel thread id) that made it. A failed exec frees its own at once; the thread's next exec
 * frees the others: an earlier vfork child of this thread is done by then (vfork suspends its
 * caller until the child has exec'd or exited), and one of another task (a fork child's copy of the
 * list) is not in use in this process. Memory of this task's own frames (a signal handler that execs
 * while an exec is being planned) is left alone. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec.h"

struct exec_mem {
    struct exec_mem *next;
    long task;
    max_align_t data[]; /* what the caller gets */
};

/* initial-exec: the library is always loaded at start-up (preloaded), where static TLS is there */
static __thread struct exec_mem *exec_mems __attribute__((tls_model("initial-exec")));

long hp_exec_task(void)
{
    return syscall(SYS_gettid);
}

void *hp_exec_alloc(size_t size, long task)
{
    struct exec_mem *m = malloc(sizeof(*m) + size);

    if (!m)
        return NULL;
    m->task = task;
    m->next = exec_mems;
    exec_mems = m;
    return m->data;
}

void hp_exec_free(void *data)
{
    if (!data)
        return;
    for (struct exec_mem **at = &exec_mems; *at; at = &(*at)->next) {
        if ((*at)->data == data) {
            struct exec_mem *m = *at;

            *at = m->next;
            free(m);
            return;
        }
    }
}

void hp_exec_reclaim(long task)
{
    struct exec_mem **at = &exec_mems;

    while (*at) {
        struct exec_mem *m = *at;

        if (m->task != task) {
            *at = m->next;
            free(m);
        } else {
            at = &m->next;
        }
    }
}

/* memory: tracee memory access (see memory.h). */
#define _GNU_SOURCE
#include "memory.h"

#include "arch.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#define PAGE 4096u

int mem_read_string(pid_t tid, uint64_t addr, char *buf, size_t size)
{
    size_t got = 0;

    if (addr == 0)
        return -EFAULT;
    while (got < size) {
        /* one page at a time: a read must not run into an unmapped page after the string */
        size_t chunk = PAGE - (size_t)((addr + got) & (PAGE - 1));
        struct iovec local, remote;
        ssize_t n;

        if (chunk > size - got)
            chunk = size - got;
        local = (struct iovec){buf + got, chunk};
        remote = (struct iovec){(void *)(uintptr_t)(addr + got), chunk};
        n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        if (n <= 0)
            return n < 0 ? -errno : -EFAULT;
        if (memchr(buf + got, '\0', (size_t)n))
            return 0;
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

int mem_read(pid_t tid, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    ssize_t n;

    if (len == 0)
        return 0;
    n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

int mem_write(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
    struct iovec local = {(void *)buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    ssize_t n;

    if (len == 0)
        return 0;
    n = process_vm_writev(tid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

void scratch_init(struct scratch *s, pid_t tid, uint64_t sp)
{
    s->tid = tid;
    s->next = (sp - TRACER_RED_ZONE) & ~(uint64_t)15;
}

int scratch_put(struct scratch *s, const void *data, size_t len, uint64_t *addr)
{
    uint64_t at = (s->next - len) & ~(uint64_t)15;
    int rc = mem_write(s->tid, at, data, len);

    if (rc < 0)
        return rc;
    s->next = at;
    *addr = at;
    return 0;
}

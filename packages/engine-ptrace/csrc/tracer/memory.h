/* memory: reading and writing a stopped tracee's address space (process_vm_readv/writev), and
 * scratch space for translated strings below its stack pointer (past the red zone). */
#ifndef HPCBOX_TRACER_MEMORY_H
#define HPCBOX_TRACER_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read a NUL-terminated string at tracee address addr into buf (size bytes, NUL included).
 * -ENAMETOOLONG when it does not fit, -EFAULT when unreadable. */
int mem_read_string(pid_t tid, uint64_t addr, char *buf, size_t size);

/* Read / write exactly len bytes; -EFAULT on a short transfer. */
int mem_read(pid_t tid, uint64_t addr, void *buf, size_t len);
int mem_write(pid_t tid, uint64_t addr, const void *buf, size_t len);

/* Scratch space of one stop: allocated downwards from below the red zone of the stack. */
struct scratch {
    pid_t tid;
    uint64_t next;  /* lowest address handed out so far */
};

void scratch_init(struct scratch *s, pid_t tid, uint64_t sp);

/* Copy len bytes into the tracee's scratch space; *addr receives where (aligned to 16). */
int scratch_put(struct scratch *s, const void *data, size_t len, uint64_t *addr);

#endif

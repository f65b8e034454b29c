/* The translation and exec classification that the wrappers use, free of global state so that
 * the cffi module (property tests) calls exactly the code the library runs. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guestpath.h"
#include "hpcbox_preload.h"

int hpcbox_preload_translate(const struct gp_context *ctx, const char *guest_cwd,
                             const char *guest_path, int how, char *out, size_t out_size)
{
    char joined[PATH_MAX];
    size_t clen, plen;
    int flags = how & (GP_FOLLOW_LAST | GP_PARENT | GP_NO_MOUNT | GP_RMDIR | GP_UNLINK);

    if (!ctx || !guest_path || !out)
        return -EFAULT;
    if (guest_path[0] == '/' || guest_path[0] == '\0')
        return gp_to_host(ctx, guest_path, flags, out, out_size);
    if (!guest_cwd || guest_cwd[0] != '/')
        return -EINVAL;
    clen = strlen(guest_cwd);
    plen = strlen(guest_path);
    if (clen + 1 + plen + 1 > sizeof(joined))
        return -ENAMETOOLONG;
    memcpy(joined, guest_cwd, clen);
    joined[clen] = '/';
    memcpy(joined + clen + 1, guest_path, plen + 1);
    return gp_to_host(ctx, joined, flags, out, out_size);
}

/* Raw system calls here, as the open: every exec classifies its program in the child, where
 * libc's pread and close would be bound on first call (a symbol lookup, a page fault). */
static int read_at(int fd, void *buf, size_t size, off_t offset)
{
    long n = syscall(SYS_pread64, fd, buf, size, offset);

    if (n < 0)
        return -errno;
    return (int)n;
}

/* The first bytes of the file, read once: the ELF header, and usually the program headers and
 * PT_INTERP's string (read separately only when they lie further). */
#define HEAD_BYTES 1024

struct head {
    union {
        Elf64_Ehdr eh;
        char bytes[HEAD_BYTES];
    } u;
    int n; /* bytes read */
};

/* size bytes at offset: from the head when it holds them, else read. n or -errno. */
static int head_at(int fd, const struct head *h, void *buf, size_t size, off_t offset)
{
    if (offset >= 0 && (size_t)offset + size <= (size_t)h->n) {
        memcpy(buf, h->u.bytes + offset, size);
        return (int)size;
    }
    return read_at(fd, buf, size, offset);
}

/* PT_INTERP of a 64-bit little-endian ELF (the only kind this x86_64/aarch64 build runs). */
static int elf_interp(int fd, const struct head *h, char *interp, size_t interp_size)
{
    const Elf64_Ehdr *eh = &h->u.eh;

    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_phentsize != sizeof(Elf64_Phdr))
        return HPCBOX_EXEC_UNKNOWN;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        int n = head_at(fd, h, &ph, sizeof(ph), (off_t)(eh->e_phoff + (Elf64_Off)i * sizeof(ph)));

        if (n < 0)
            return n;
        if (n != (int)sizeof(ph))
            return HPCBOX_EXEC_UNKNOWN;
        if (ph.p_type != PT_INTERP)
            continue;
        if (ph.p_filesz == 0 || ph.p_filesz >= interp_size)
            return -ENAMETOOLONG;
        n = head_at(fd, h, interp, ph.p_filesz, (off_t)ph.p_offset);
        if (n < 0)
            return n;
        if ((size_t)n != ph.p_filesz)
            return HPCBOX_EXEC_UNKNOWN;
        interp[ph.p_filesz] = '\0';
        return HPCBOX_EXEC_DYNAMIC;
    }
    return HPCBOX_EXEC_STATIC;
}

int hpcbox_preload_classify(const char *host_path, char *interp, size_t interp_size)
{
    struct head h;
    int fd, rc;

    if (interp_size > 0)
        interp[0] = '\0';
    fd = (int)syscall(SYS_openat, AT_FDCWD, host_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    h.n = read_at(fd, h.u.bytes, sizeof(h.u.bytes), 0);
    if (h.n < 0)
        rc = h.n;
    else if (h.n >= 2 && h.u.bytes[0] == '#' && h.u.bytes[1] == '!')
        rc = HPCBOX_EXEC_SCRIPT;
    else if (h.n >= (int)sizeof(h.u.eh) && memcmp(h.u.eh.e_ident, ELFMAG, SELFMAG) == 0)
        rc = elf_interp(fd, &h, interp, interp_size);
    else
        rc = HPCBOX_EXEC_UNKNOWN;
    syscall(SYS_close, fd); /* read-only: nothing to lose */
    return rc;
}

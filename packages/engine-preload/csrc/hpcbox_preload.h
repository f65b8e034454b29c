/* Public C interface of the preload engine core: what the Python side (cffi) and tests call. */
#ifndef HPCBOX_PRELOAD_H
#define HPCBOX_PRELOAD_H

#include <stddef.h>

/* Symbols the library exports; everything else is built hidden. */
#define HPCBOX_EXPORT __attribute__((visibility("default")))

struct gp_context;

/* Version of the C core's ABI, checked by the Python side at import. */
HPCBOX_EXPORT int hpcbox_preload_abi_version(void);

/* The translation every wrapper of the library performs: guest_path (absolute, or relative to the
 * canonical guest cwd) to the host path; how holds gp_to_host's flags (GP_FOLLOW_LAST: follow a
 * final symlink; GP_PARENT, GP_NO_MOUNT: guestpath.h).
 * 0 or -errno (as gp_to_host); a relative path is joined to cwd first (-ENAMETOOLONG). */
HPCBOX_EXPORT int hpcbox_preload_translate(const struct gp_context *ctx, const char *guest_cwd,
                                           const char *guest_path, int how, char *out,
                                           size_t out_size);

/* What exec does with a host file: 0 not executable as a program we know (no #!, no ELF),
 * 1 a #! script, 2 a dynamically linked ELF (interp holds its PT_INTERP), 3 a static ELF;
 * -errno when the file cannot be read. */
#define HPCBOX_EXEC_UNKNOWN 0
#define HPCBOX_EXEC_SCRIPT 1
#define HPCBOX_EXEC_DYNAMIC 2
#define HPCBOX_EXEC_STATIC 3
HPCBOX_EXPORT int hpcbox_preload_classify(const char *host_path, char *interp, size_t interp_size);

#endif

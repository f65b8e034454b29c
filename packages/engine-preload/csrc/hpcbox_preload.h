/* Public C interface of the preload engine core (grows with issue 6). */
#ifndef HPCBOX_PRELOAD_H
#define HPCBOX_PRELOAD_H

/* Symbols the library exports; everything else is built hidden. */
#define HPCBOX_EXPORT __attribute__((visibility("default")))

/* Version of the C core's ABI, checked by the Python side at import. */
HPCBOX_EXPORT int hpcbox_preload_abi_version(void);

#endif

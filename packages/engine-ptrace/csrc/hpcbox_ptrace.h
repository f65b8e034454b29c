/* Public C interface of the ptrace engine core (grows with issue 5). */
#ifndef HPCBOX_PTRACE_H
#define HPCBOX_PTRACE_H

/* Version of the C core's ABI, checked by the Python side at import. */
int hpcbox_ptrace_abi_version(void);

#endif

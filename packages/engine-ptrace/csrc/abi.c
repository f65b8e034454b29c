#include "hpcbox_ptrace.h"

int hpcbox_ptrace_abi_version(void)
{
    return 1;
}

#include "hpcbox_preload.h"

int hpcbox_preload_abi_version(void)
{
    return 2;
}

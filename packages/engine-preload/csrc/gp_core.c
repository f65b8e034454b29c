/* The shared guest-path core (csrc/guestpath/: guestpath.c, owners.c, procmagic.c, landlock.c,
 * compiled in unchanged) with its lstat/readlink/realpath calls sent to the kernel directly
 * (compat.h), in both the library and the cffi module, so that the property tests check the code
 * the library runs. */
#include "compat.h"

#include "guestpath.c"
#include "owners.c"
#include "procmagic.c"
#include "landlock.c"

/* Messages on stderr: hp_say (always, one line) and hp_debug (with HPCBOX_DEBUG). Written with one
 * write(2) of the whole line, errno kept: wrappers call them between the real call and their return. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "preload.h"

int hp_debug_level;

static void vsay(const char *fmt, va_list ap)
{
    char line[1024];
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);

    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    while (n > 0) {
        ssize_t w = write(2, line, (size_t)n);

        if (w <= 0)
            break;
        n -= (int)w;
    }
}

void hp_say(const char *fmt, ...)
{
    va_list ap;
    int saved = errno;

    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    errno = saved;
}

void hp_debug(const char *fmt, ...)
{
    va_list ap;
    int saved = errno;

    if (hp_debug_level <= 0)
        return;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    errno = saved;
}

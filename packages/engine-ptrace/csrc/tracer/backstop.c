/* backstop: the Landlock ruleset of the tracees (csrc/guestpath/landlock.h). Built by the tracer
 * before it forks, from its own mounts: writes are allowed beneath the rootfs (unless --readonly),
 * the read-write bindings (the host's /dev, /proc and /sys among them) and the files the program's
 * stdout/stderr are open on; the child enforces it just before its exec. A route the translation
 * missed then fails with EACCES instead of writing on the host. */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool debugging(void)
{
    const char *d = getenv("HPCBOX_DEBUG");

    return d && *d && strcmp(d, "0") != 0;
}

int backstop_prepare(struct tracer *t)
{
    struct hb_landlock *ll = &t->landlock;
    int rc;

    ll->fd = -1;
    if (!t->cfg.landlock)
        return 0;
    rc = hb_landlock_open(ll);
    if (rc < 0) {
        if (debugging())
            fprintf(stderr, "hpcbox-ptrace: no Landlock backstop here (%s)\n", strerror(-rc));
        return 0; /* no Landlock in this kernel (or too old): run without it */
    }
    for (size_t i = 0; i < t->n_mounts && rc == 0; i++) {
        const struct tracer_mount *m = &t->mounts[i];

        if (m->readonly || (i == 0 && t->cfg.readonly_root))
            continue;
        rc = hb_landlock_allow(ll, m->host);
        if (rc < 0)
            fprintf(stderr, "hpcbox-ptrace: Landlock rule for %s: %s\n", m->host, strerror(-rc));
    }
    if (rc == 0 && (rc = hb_landlock_allow_stdio(ll)) < 0)
        fprintf(stderr, "hpcbox-ptrace: Landlock rule for stdio: %s\n", strerror(-rc));
    if (rc < 0)
        hb_landlock_close(ll);
    return rc;
}

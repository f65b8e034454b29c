/* Configuration: read once from the environment (HPCBOX_PRELOAD_*, README "Environment") into one
 * read-only struct (hp_conf), the copies exec hands on (hp_keep_names), the Landlock backstop the
 * container's first process sets up, and the configuration's one change after that: chroot(2)
 * inside the container (hp_chroot). Messages: say.c; real functions: next.c; the translation that
 * reads this configuration: resolve.c (with its directory cache, dircache.c); process start: init.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "landlock.h"
#include "preload.h"

#undef fstatat
#undef stat
#undef readlinkat
#undef realpath

const char *const hp_keep_names[HP_N_KEEP] = {
    HP_ENV_ROOT, HP_ENV_BINDS,    HP_ENV_LIB_GLIBC, HP_ENV_LIB_MUSL, HP_ENV_LIBPATH,
    HP_ENV_LIBPATH_MUSL, HP_ENV_UID, HP_ENV_GID,  HP_ENV_HOSTNAME, HP_ENV_MODE, HP_ENV_RO,
    HP_ENV_LOADERS, HP_ENV_PTRACE, HP_ENV_OWNERS, HP_ENV_CANON,
};
const char *const hp_kernel_fs[3] = {"/proc", "/dev", "/sys"};

static struct hp_config config HP_DATA;
static int state; /* 0 not yet, 1 being set up, 2 ready */

static char *keep_copy(const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *s = malloc(n + 1 + v + 1);

    if (!s)
        return NULL;
    memcpy(s, name, n);
    s[n] = '=';
    memcpy(s + n + 1, value, v + 1);
    return s;
}

/* HPCBOX_PRELOAD_BINDS: lines "guest=host" (the guest path holds no "="). */
static int add_bindings(struct gp_context *ctx, const char *spec)
{
    char *copy = strdup(spec), *line, *save = NULL;
    int rc = 0;

    if (!copy)
        return -ENOMEM;
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');

        if (!eq)
            continue;
        *eq = '\0';
        rc = gp_add_binding(ctx, line, eq + 1);
        if (rc < 0) {
            hp_say("hpcbox-preload: binding %s=%s: %s; the path is not bound", line, eq + 1,
                   strerror(-rc));
            rc = 0;
        }
    }
    free(copy);
    return rc;
}

/* 16 hex digits of a 64-bit FNV-1a hash of the ROOT and BINDS values. */
static const char *canon_tag(const char *root, const char *binds, char tag[17])
{
    unsigned long long h = 0xcbf29ce484222325ull;
    const char *parts[2] = {root ? root : "", binds ? binds : ""};

    for (int k = 0; k < 2; k++) {
        for (const unsigned char *p = (const unsigned char *)parts[k];; p++) {
            h = (h ^ *p) * 0x100000001b3ull;
            if (!*p)
                break;
        }
    }
    hp_hex16(h, tag); /* not snprintf: each libc page it reaches is a page fault, in every process */
    return tag;
}

/* The ROOT and BINDS handed to the processes this one starts: the canonical host paths just
 * resolved, and their tag, so that those processes need no realpath of them (a binding whose host
 * path did not resolve is left out: it was reported here). Unchanged on any allocation failure. */
static void keep_canonical(struct hp_config *c)
{
    size_t cap = 1;
    char *binds, *root, *canon, tag[17];
    size_t len = 0;

    for (size_t i = 0; i < c->ctx.n_bindings; i++)
        cap += c->ctx.bindings[i].guest_len + c->ctx.bindings[i].host_len + 2;
    binds = malloc(cap);
    if (!binds)
        return;
    binds[0] = '\0';
    for (size_t i = 0; i < c->ctx.n_bindings; i++) {
        const struct gp_binding *b = &c->ctx.bindings[i];

        len += (size_t)snprintf(binds + len, cap - len, "%s%s=%s", i ? "\n" : "", b->guest, b->host);
    }
    root = keep_copy(HP_ENV_ROOT, c->ctx.root);
    canon = keep_copy(HP_ENV_CANON, canon_tag(c->ctx.root, binds, tag));
    if (root && canon) {
        char *kept_binds = keep_copy(HP_ENV_BINDS, binds);

        if (kept_binds) {
            free(c->keep[0]);
            free(c->keep[1]);
            free(c->keep[HP_N_KEEP - 1]);
            c->keep[0] = root;
            c->keep[1] = kept_binds;
            c->keep[HP_N_KEEP - 1] = canon;
            root = canon = NULL;
        }
    }
    free(root);
    free(canon);
    free(binds);
}

static bool listed(const char *list, const char *guest)
{
    size_t n = strlen(guest);

    for (const char *s = list; s && *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);

        if (len == n && strncmp(s, guest, n) == 0)
            return true;
        if (!e)
            break;
        s = e + 1;
    }
    return false;
}

/* HPCBOX_PRELOAD_RO: the root and every binding, as host prefixes, with their read-only flag. */
static void read_only(struct hp_config *c, const char *list)
{
    size_t n = c->ctx.n_bindings + 1;

    if (!list || !*list)
        return;
    c->ro = calloc(n, sizeof(*c->ro));
    c->ro_flag = calloc(n, sizeof(*c->ro_flag));
    if (!c->ro || !c->ro_flag)
        return;
    c->ro[0] = c->ctx.root;
    c->ro_flag[0] = listed(list, "/");
    for (size_t i = 0; i < c->ctx.n_bindings; i++) {
        c->ro[i + 1] = c->ctx.bindings[i].host;
        c->ro_flag[i + 1] = listed(list, c->ctx.bindings[i].guest);
    }
    c->n_ro = n;
}

/* The components of every binding's guest path (/etc/hosts: "etc", "hosts"). */
static void bound_names(struct hp_config *c)
{
    size_t total = 0;

    for (size_t i = 0; i < c->ctx.n_bindings; i++) {
        for (const char *g = c->ctx.bindings[i].guest; *g; g++)
            total += *g == '/';
    }
    c->bound_names = calloc(total ? total : 1, sizeof(char *));
    if (!c->bound_names)
        return;
    for (size_t i = 0; i < c->ctx.n_bindings; i++) {
        const char *g = c->ctx.bindings[i].guest;

        while (*g) {
            const char *s = g + 1, *e = strchr(s, '/');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            char *name = strndup(s, n);

            if (name && c->n_bound_names < total)
                c->bound_names[c->n_bound_names++] = name;
            else
                free(name);
            g = s + n;
        }
    }
}

static long number(const char *s, long fallback)
{
    char *end;
    long v;

    if (!s || !*s)
        return fallback;
    v = strtol(s, &end, 10);
    return *end ? fallback : v;
}

/* The Landlock backstop (csrc/guestpath/landlock.h), set up once by the container's first process
 * (the launcher) before the program starts, inherited by every process after it: writes succeed
 * only beneath the rootfs (unless read-only), the read-write bindings (the host's /dev, /proc, /sys
 * among them), the ownership record and the files stdout/stderr are open on. A route the
 * translation missed then fails with EACCES instead of writing on the host. */
static void backstop(const struct hp_config *c)
{
    struct hb_landlock ll;
    int rc = hb_landlock_open(&ll);

    if (rc < 0) {
        hp_debug("hpcbox-preload: no Landlock backstop here (%s)", strerror(-rc));
        return;
    }
    for (size_t i = 0; i <= c->ctx.n_bindings && rc == 0; i++) {
        const char *host = i == 0 ? c->ctx.root : c->ctx.bindings[i - 1].host;

        if (c->n_ro && c->ro_flag[i])
            continue;
        rc = hb_landlock_allow(&ll, host);
        if (rc < 0)
            hp_say("hpcbox-preload: Landlock rule for %s: %s; running without the backstop", host,
                   strerror(-rc));
    }
    if (rc == 0 && c->owners && (rc = hb_landlock_allow(&ll, c->owners)) == -ENOENT)
        rc = 0; /* no record yet: the library creates none, chown then changes nothing */
    if (rc == 0 && (rc = hb_landlock_allow_stdio(&ll)) < 0)
        hp_say("hpcbox-preload: Landlock rule for stdio: %s; running without the backstop", strerror(-rc));
    if (rc == 0 && (rc = hb_landlock_enforce(&ll)) < 0)
        hp_say("hpcbox-preload: cannot enforce the Landlock ruleset: %s; running without the backstop",
               strerror(-rc));
    hb_landlock_close(&ll);
}

/* src into dst[size], cut as snprintf cuts it; not snprintf: every process sets up, and each page
 * of libc's printf it reaches is a page fault. */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void setup(void)
{
    struct hp_env_index env;
    const char *root = (hp_env_index(&env), hp_env_lookup(&env, HP_ENV_ROOT)), *binds, *v;
    char tag[17];
    bool trusted;
    int rc;

    hp_debug_level = (int)number(hp_env_lookup(&env, HP_ENV_DEBUG), 0);
    if (!root || !*root)
        return;
    binds = hp_env_lookup(&env, HP_ENV_BINDS);
    trusted = (v = hp_env_lookup(&env, HP_ENV_CANON)) && strcmp(v, canon_tag(root, binds, tag)) == 0;
    hp_sys_trust_canonical(trusted); /* no realpath of paths a parent resolved */
    rc = gp_context_init(&config.ctx, root);
    if (rc < 0) {
        hp_sys_trust_canonical(0);
        hp_say("hpcbox-preload: the rootfs %s: %s; paths are not translated", root, strerror(-rc));
        return;
    }
    if (binds && *binds)
        add_bindings(&config.ctx, binds);
    hp_sys_trust_canonical(0);
    for (size_t i = 0; i < config.ctx.n_bindings; i++) {
        const struct gp_binding *b = &config.ctx.bindings[i];

        for (int k = 0; k < 3; k++) {
            if (strcmp(b->guest, hp_kernel_fs[k]) == 0)
                config.kernel_fs[k] = strcmp(b->host, hp_kernel_fs[k]) == 0;
        }
    }
    read_only(&config, hp_env_lookup(&env, HP_ENV_RO));
    bound_names(&config);
    for (int i = 0; i < HP_N_KEEP; i++) {
        if ((v = hp_env_lookup(&env, hp_keep_names[i])))
            config.keep[i] = keep_copy(hp_keep_names[i], v);
    }
    if (!trusted)
        keep_canonical(&config);
    for (size_t i = 0; trusted && hp_debug_level > 0 && i < config.ctx.n_bindings; i++)
        hp_debug("hpcbox-preload: volume %s=%s (canonical, from the parent)", config.ctx.bindings[i].guest,
                 config.ctx.bindings[i].host); /* what /proc/PID/environ no longer shows */
    config.first = !trusted;
    config.lib_glibc = (v = hp_env_lookup(&env, HP_ENV_LIB_GLIBC)) ? strdup(v) : NULL;
    config.lib_musl = (v = hp_env_lookup(&env, HP_ENV_LIB_MUSL)) ? strdup(v) : NULL;
    config.loaders = (v = hp_env_lookup(&env, HP_ENV_LOADERS)) ? strdup(v) : NULL;
    config.ptrace = (v = hp_env_lookup(&env, HP_ENV_PTRACE)) && *v ? strdup(v) : NULL;
    config.libpath = strdup((v = hp_env_lookup(&env, HP_ENV_LIBPATH)) ? v : "");
    config.libpath_musl = strdup((v = hp_env_lookup(&env, HP_ENV_LIBPATH_MUSL)) ? v : "");
    if ((v = hp_env_lookup(&env, HP_ENV_UID)) && *v) {
        config.fake_ids = true;
        config.uid = (uid_t)number(v, 0);
        config.gid = (gid_t)number(hp_env_lookup(&env, HP_ENV_GID), 0);
        hp_creds_init(hp_env_lookup(&env, HP_ENV_CREDS), config.uid, config.gid);
        config.real_uid = (uid_t)syscall(SYS_getuid);
        config.real_gid = (gid_t)syscall(SYS_getgid);
        config.owners = (v = hp_env_lookup(&env, HP_ENV_OWNERS)) && *v ? strdup(v) : NULL;
    }
    if ((v = hp_env_lookup(&env, HP_ENV_HOSTNAME)) && *v)
        copy_cut(config.hostname, sizeof(config.hostname), v);
    config.mode = (v = hp_env_lookup(&env, HP_ENV_MODE)) && v[0] == 'F' && v[1] >= '1' && v[1] <= '4' ? v[1] - '0' : 1;
    v = hp_env_lookup(&env, HP_ENV_EXE);
    config.exe = v ? strndup(v, PATH_MAX - 1) : NULL;
    if (!config.exe) /* none, or no memory: as unknown */
        config.exe = "";
    config.active = config.libpath && config.libpath_musl;
    if (config.active && (v = hp_env_lookup(&env, HP_ENV_LANDLOCK)) && strcmp(v, "1") == 0)
        backstop(&config);
}

const struct hp_config *hp_conf(void)
{
    int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);

    if (s == 0) {
        int expected = 0;

        if (__atomic_compare_exchange_n(&state, &expected, 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            int saved = errno;

            setup();
            errno = saved;
            __atomic_store_n(&state, 2, __ATOMIC_RELEASE);
            s = 2;
        } else {
            s = expected;
        }
    }
    while (s == 1) { /* another thread sets up: wait for it */
        sched_yield();
        s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    }
    return config.active ? &config : NULL;
}

bool hp_known_loader(const char *guest, char *host, size_t size, bool *mask_hwcaps, bool *mask_legacy)
{
    size_t n = strlen(guest);

    for (const char *s = config.loaders; s && *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        bool mask = false, legacy = false;

        for (; len > 0 && (*s == '+' || *s == '~'); s++, len--) { /* the engine's marks (_engine.py) */
            mask |= *s == '+';
            legacy |= *s == '~';
        }
        if (len > n + 1 && strncmp(s, guest, n) == 0 && s[n] == '=' && len - n - 1 < size) {
            memcpy(host, s + n + 1, len - n - 1);
            host[len - n - 1] = '\0';
            *mask_hwcaps = mask;
            *mask_legacy = legacy;
            return true;
        }
        if (!e)
            break;
        s = e + 1;
    }
    return false;
}

/* ---- chroot(2) inside the container (chroot.c) -----------------------------------------------
 * The process's root becomes the directory at canonical guest path `guest`: a new path core
 * context rooted at its host directory, with the bindings that lie below it (their guest prefix
 * cut), and the configuration this process hands to the programs it starts made to match: ROOT
 * and BINDS (and their canonical tag), the library directories of the loaders moved under the new
 * root (their guest paths are kept: a root of the same distribution has them at the same place),
 * RO rebased. The engine's list of resolved loaders and the static programs' tracer (both for the
 * container's own root) are dropped. Not safe against other threads translating meanwhile. */
static char *rebase_libpath(const char *list, const char *old_root, const char *new_root)
{
    size_t olen = strlen(old_root), cap = 1, len = 0;
    const char *s;
    char *out;

    for (s = list; s && *s; s++)
        cap += (*s == ':') + 1;
    cap += (cap + 1) * strlen(new_root);
    out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (s = list; s && *s;) {
        const char *e = strchrnul(s, ':');
        size_t n = (size_t)(e - s);

        if (n > olen && strncmp(s, old_root, olen) == 0 && s[olen] == '/')
            len += (size_t)snprintf(out + len, cap - len, "%s%s%.*s", len ? ":" : "", new_root,
                                    (int)(n - olen), s + olen);
        s = *e ? e + 1 : e;
    }
    return out;
}

static void keep_set(int index, const char *value)
{
    free(config.keep[index]);
    config.keep[index] = value ? keep_copy(hp_keep_names[index], value) : NULL;
}

int hp_chroot(const char *guest)
{
    struct gp_context next, old;
    char host[PATH_MAX], *ro_list = NULL, *libpath, *libpath_musl;
    const char *old_ro = config.keep[10] ? strchr(config.keep[10], '=') + 1 : NULL;
    size_t len = strlen(guest), ro_len = 0, ro_cap;
    int rc;

    if (strcmp(guest, "/") == 0)
        return 0;
    rc = gp_map_canonical(&config.ctx, guest, host, sizeof(host));
    if (rc < 0)
        return rc;
    rc = gp_context_init(&next, host);
    for (size_t i = 0; rc == 0 && i < config.ctx.n_bindings; i++) {
        const struct gp_binding *b = &config.ctx.bindings[i];

        if (b->guest_len > len && strncmp(b->guest, guest, len) == 0 && b->guest[len] == '/')
            rc = gp_add_binding(&next, b->guest + len, b->host);
    }
    ro_cap = 3 + (old_ro ? strlen(old_ro) : 0);
    libpath = rebase_libpath(config.libpath, config.ctx.root, next.root);
    libpath_musl = rebase_libpath(config.libpath_musl, config.ctx.root, next.root);
    ro_list = malloc(ro_cap);
    if (rc == 0 && (!libpath || !libpath_musl || !ro_list))
        rc = -ENOMEM;
    if (rc < 0) {
        gp_context_destroy(&next);
        free(libpath);
        free(libpath_musl);
        free(ro_list);
        return rc;
    }
    /* read-only: the new root if it lies in a read-only tree, and the rebased read-only bindings */
    ro_list[0] = '\0';
    if (hp_read_only_host(&config, next.root))
        ro_len += (size_t)snprintf(ro_list, ro_cap, "/");
    for (size_t i = 0; old_ro && i < next.n_bindings; i++) {
        char full[PATH_MAX];

        snprintf(full, sizeof(full), "%s%s", guest, next.bindings[i].guest);
        if (listed(old_ro, full) && ro_len + next.bindings[i].guest_len + 2 <= ro_cap)
            ro_len += (size_t)snprintf(ro_list + ro_len, ro_cap - ro_len, "%s%s", ro_len ? "\n" : "",
                                       next.bindings[i].guest);
    }
    old = config.ctx;
    config.ctx = next;
    gp_context_destroy(&old);
    for (int k = 0; k < 3; k++) {
        config.kernel_fs[k] = false;
        for (size_t i = 0; i < config.ctx.n_bindings; i++)
            if (strcmp(config.ctx.bindings[i].guest, hp_kernel_fs[k]) == 0)
                config.kernel_fs[k] = strcmp(config.ctx.bindings[i].host, hp_kernel_fs[k]) == 0;
    }
    free(config.ro);
    free(config.ro_flag);
    config.ro = NULL;
    config.ro_flag = NULL;
    config.n_ro = 0;
    read_only(&config, ro_list);
    for (size_t i = 0; i < config.n_bound_names; i++)
        free(config.bound_names[i]);
    free(config.bound_names);
    config.bound_names = NULL;
    config.n_bound_names = 0;
    bound_names(&config);
    free(config.libpath);
    free(config.libpath_musl);
    config.libpath = libpath;
    config.libpath_musl = libpath_musl;
    free(config.loaders);
    config.loaders = NULL;
    free(config.ptrace);
    config.ptrace = NULL;
    keep_canonical(&config);
    keep_set(4, libpath);
    keep_set(5, libpath_musl);
    keep_set(10, ro_list[0] ? ro_list : NULL);
    keep_set(11, NULL);
    keep_set(12, NULL);
    free(ro_list);
    hp_invalidate();
    return 0;
}

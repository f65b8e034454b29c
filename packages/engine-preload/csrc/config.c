/* Configuration (read once from the environment), real-function lookup, debug output, and the
 * path translation every wrapper calls. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static struct hp_config config;
static const char *const kernel_fs[3] = {"/proc", "/dev", "/sys"};
static int state; /* 0 not yet, 1 being set up, 2 ready */

/* What a wrapper calls when libc lacks the function it wraps: fails with ENOSYS (-1) instead of
 * jumping to NULL. Every function this library wraps exists in glibc >= 2.31 and musl >= 1.2. */
static long no_such_function(void)
{
    errno = ENOSYS;
    return -1;
}

void *hp_next(const char *name, void **slot)
{
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

    if (!fn) {
        fn = hp_next_symbol(name);
        if (!fn) {
            hp_say("hpcbox-preload: libc has no %s; the call fails with ENOSYS", name);
            fn = (void *)no_such_function;
        }
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

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

    if (config.debug <= 0)
        return;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    errno = saved;
}

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
    snprintf(tag, 17, "%016llx", h);
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

static void setup(void)
{
    const char *root = getenv(HP_ENV_ROOT), *binds, *v;
    char tag[17];
    bool trusted;
    int rc;

    config.debug = (int)number(getenv(HP_ENV_DEBUG), 0);
    if (!root || !*root)
        return;
    binds = getenv(HP_ENV_BINDS);
    trusted = (v = getenv(HP_ENV_CANON)) && strcmp(v, canon_tag(root, binds, tag)) == 0;
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
            if (strcmp(b->guest, kernel_fs[k]) == 0)
                config.kernel_fs[k] = strcmp(b->host, kernel_fs[k]) == 0;
        }
    }
    read_only(&config, getenv(HP_ENV_RO));
    bound_names(&config);
    for (int i = 0; i < HP_N_KEEP; i++) {
        if ((v = getenv(hp_keep_names[i])))
            config.keep[i] = keep_copy(hp_keep_names[i], v);
    }
    if (!trusted)
        keep_canonical(&config);
    for (size_t i = 0; trusted && config.debug > 0 && i < config.ctx.n_bindings; i++)
        hp_debug("hpcbox-preload: volume %s=%s (canonical, from the parent)", config.ctx.bindings[i].guest,
                 config.ctx.bindings[i].host); /* what /proc/PID/environ no longer shows */
    config.first = !trusted;
    config.lib_glibc = (v = getenv(HP_ENV_LIB_GLIBC)) ? strdup(v) : NULL;
    config.lib_musl = (v = getenv(HP_ENV_LIB_MUSL)) ? strdup(v) : NULL;
    config.loaders = (v = getenv(HP_ENV_LOADERS)) ? strdup(v) : NULL;
    config.ptrace = (v = getenv(HP_ENV_PTRACE)) && *v ? strdup(v) : NULL;
    config.libpath = strdup((v = getenv(HP_ENV_LIBPATH)) ? v : "");
    config.libpath_musl = strdup((v = getenv(HP_ENV_LIBPATH_MUSL)) ? v : "");
    if ((v = getenv(HP_ENV_UID)) && *v) {
        config.fake_ids = true;
        config.uid = (uid_t)number(v, 0);
        config.gid = (gid_t)number(getenv(HP_ENV_GID), 0);
        hp_creds_init(getenv(HP_ENV_CREDS), config.uid, config.gid);
        config.real_uid = (uid_t)syscall(SYS_getuid);
        config.real_gid = (gid_t)syscall(SYS_getgid);
        config.owners = (v = getenv(HP_ENV_OWNERS)) && *v ? strdup(v) : NULL;
    }
    if ((v = getenv(HP_ENV_HOSTNAME)) && *v)
        snprintf(config.hostname, sizeof(config.hostname), "%s", v);
    config.mode = (v = getenv(HP_ENV_MODE)) && v[0] == 'F' && v[1] >= '1' && v[1] <= '4' ? v[1] - '0' : 1;
    if ((v = getenv(HP_ENV_EXE)))
        snprintf(config.exe, sizeof(config.exe), "%s", v);
    config.active = config.libpath && config.libpath_musl;
    if (config.active && (v = getenv(HP_ENV_LANDLOCK)) && strcmp(v, "1") == 0)
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

/* ---- files libc opens inside itself ---------------------------------------------------------
 * /etc/localtime and the zoneinfo files are opened by libc's own internal calls, which this
 * library does not see: libc is pointed at the container's copies through the variables it reads,
 * where the container has them and the variable is not set (TZ=":FILE", TZDIR; host paths). Once,
 * in the container's first process: inherited from there. Not GCONV_PATH: with it set, glibc
 * parses the module lists instead of its cache in every process that sets a locale (fork+exec
 * of `ls` 2x slower). */
static const char *host_of(const char *guest, bool dir, char *buf)
{
    struct stat st;
    const char *h = hp_path(AT_FDCWD, guest, HP_FOLLOW | HP_NOFAST, buf);

    if (!h || hp_sys_fstatat(AT_FDCWD, h, &st, 0) < 0)
        return NULL;
    return (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) ? h : NULL;
}

static void container_libc_files(void)
{
    char buf[PATH_MAX], tz[PATH_MAX + 1];
    const char *h;

    if (!getenv("TZ") && (h = host_of("/etc/localtime", false, buf))) {
        snprintf(tz, sizeof(tz), ":%s", h);
        setenv("TZ", tz, 0);
    }
    if (!getenv("TZDIR") && (h = host_of("/usr/share/zoneinfo", true, buf)))
        setenv("TZDIR", h, 0);
}

/* The configuration stays out of the program's sight (`env`, environ, /proc/PID/environ): every
 * HPCBOX_PRELOAD_* variable is removed once read; exec puts the configuration back from the copies
 * in `keep`. */
static void hide_configuration(void)
{
    extern char **environ;
    char names[32][64];
    int n = 0;

    /* the names first: unsetenv moves the entries (and a program's own copy of `environ` may
     * differ from the one libc changes) */
    for (char **e = environ; e && *e && n < 32; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : 0;

        if (len && len < sizeof(names[0]) && strncmp(*e, HP_ENV_PREFIX, sizeof(HP_ENV_PREFIX) - 1) == 0) {
            memcpy(names[n], *e, len);
            names[n++][len] = '\0';
        }
    }
    if (n > 0)
        hp_hide_proc_environ();
    for (int i = 0; i < n; i++)
        unsetenv(names[i]);
}

#ifdef __GLIBC__
/* glibc passes (argc, argv, envp) to constructors; a loader without --argv0 leaves the host path
 * of the program in argv[0], which is put right here. */
__attribute__((constructor(101))) static void hp_init(int argc, char **argv, char **envp)
{
    const char *argv0 = getenv(HP_ENV_ARGV0);
    const struct hp_config *c;

    (void)envp;
    c = hp_conf();
    if (c && c->first)
        container_libc_files();
    hp_set_comm(getenv(HP_ENV_COMM));
    if (argv0 && argc > 0 && argv) {
        hp_fix_argv(argc, argv, argv0);
        program_invocation_name = argv[0];
        program_invocation_short_name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    }
    hide_configuration();
}
#else
__attribute__((constructor(101))) static void hp_init(void)
{
    const struct hp_config *c = hp_conf();

    if (c && c->first)
        container_libc_files();
    hp_set_comm(getenv(HP_ENV_COMM));
    hide_configuration();
}
#endif

/* ---- translation ---------------------------------------------------------------------------- */

void hp_guest(const char *host, char *out, size_t size)
{
    const struct hp_config *c = hp_conf();
    int rc;

    if (c && host[0] == '/') {
        rc = gp_to_guest(&c->ctx, host, out, size);
        if (rc >= 0)
            return;
    }
    snprintf(out, size, "%s", host);
}

int hp_guest_cwd(char *out, size_t size)
{
    char host[PATH_MAX];
    const struct hp_config *c = hp_conf();
    int rc;

    if (!REAL(getcwd)(host, sizeof(host)))
        return -errno;
    if (!c) {
        snprintf(out, size, "%s", host);
        return 0;
    }
    rc = gp_to_guest(&c->ctx, host, out, size);
    return rc < 0 ? rc : rc == GP_OUTSIDE ? 1 : 0;
}

/* The guest directory that a relative path starts from: 0, 1 when it is outside the guest (the
 * path then goes to the kernel as it is), or -errno. */
static int guest_base(int dirfd, char *out, size_t size)
{
    char link[64], host[PATH_MAX];
    ssize_t n;
    int rc;

    if (dirfd == AT_FDCWD)
        return hp_guest_cwd(out, size);
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    n = hp_sys_readlinkat(AT_FDCWD, link, host, sizeof(host) - 1);
    if (n < 0)
        return errno == ENOENT ? -EBADF : -errno;
    host[n] = '\0';
    if (host[0] != '/')
        return 1; /* not a directory of a file system (pipe, socket): let the kernel say so */
    rc = gp_to_guest(&hp_conf()->ctx, host, out, size);
    return rc < 0 ? rc : rc == GP_OUTSIDE ? 1 : 0;
}

bool hp_known_loader(const char *guest, char *host, size_t size)
{
    size_t n = strlen(guest);

    for (const char *s = config.loaders; s && *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);

        if (len > n + 1 && strncmp(s, guest, n) == 0 && s[n] == '=' && len - n - 1 < size) {
            memcpy(host, s + n + 1, len - n - 1);
            host[len - n - 1] = '\0';
            return true;
        }
        if (!e)
            break;
        s = e + 1;
    }
    return false;
}

bool hp_null(const void *p)
{
    return p == NULL;
}

/* A path into the host's own /proc, /dev or /sys (bound at the same place): the kernel resolves
 * it, magic links (/proc/self/cwd, /dev/fd/N) included, whose targets are host paths. */
static bool kernel_path(const struct hp_config *c, const char *path)
{
    for (int k = 0; k < 3; k++) {
        size_t n = k == 0 ? 5 : 4;

        if (c->kernel_fs[k] && strncmp(path, kernel_fs[k], n) == 0 && (path[n] == '/' || !path[n]))
            return true;
    }
    return false;
}

bool hp_plain_name(const struct hp_config *c, const char *name)
{
    if (strchr(name, '/') || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < c->n_bound_names; i++) {
        if (strcmp(c->bound_names[i], name) == 0)
            return false;
    }
    return true;
}

/* The absolute guest path of (dirfd, path) into abs; 1 when it is to go to the kernel as is. */
static int absolute(int dirfd, const char *path, char *abs)
{
    char base[PATH_MAX];
    size_t blen, plen = strlen(path);
    int rc;

    if (path[0] == '/') {
        if (plen >= PATH_MAX)
            return -ENAMETOOLONG;
        memcpy(abs, path, plen + 1);
        return 0;
    }
    rc = guest_base(dirfd, base, sizeof(base));
    if (rc != 0)
        return rc;
    blen = strlen(base);
    if (blen + 1 + plen + 1 > PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(abs, base, blen);
    abs[blen] = '/';
    memcpy(abs + blen + 1, path, plen + 1);
    return 0;
}

/* Whether the host path lies in a read-only root or binding (the longest prefix decides). */
static bool read_only_host(const struct hp_config *c, const char *host)
{
    size_t best = 0;
    bool ro = false;

    for (size_t i = 0; i < c->n_ro; i++) {
        size_t n = strlen(c->ro[i]);

        if (n >= best && strncmp(host, c->ro[i], n) == 0 &&
            (host[n] == '/' || host[n] == '\0' || (n == 1 && c->ro[i][0] == '/'))) {
            best = n;
            ro = c->ro_flag[i];
        }
    }
    return ro;
}

/* ---- the directory cache -------------------------------------------------------------------
 *
 * Absolute paths cost one lstat per component. Most programs that use them touch many names in the
 * same directory (ls -l of a glob, a shell's PATH search, Python's imports), so the last directory
 * resolved is remembered when it is reached through no symlink (its path is canonical) and exists
 * as a directory: a symlink retargeted later (ln -sfn, by another process) then cannot leave a
 * stale entry, only a directory replaced by something else can. A path in it then costs nothing (not followed) or one
 * lstat (followed: a symlink falls back to the walk). The entry is dropped when this process removes
 * or renames anything (hp_invalidate); changes made meanwhile by other processes can be seen late,
 * the same race as the component walk itself has (csrc/guestpath/guestpath.h, "Races"). */
struct dir_cache {
    unsigned gen;
    size_t len;                /* of guest; 0 = empty */
    char guest[PATH_MAX];      /* lexical guest directory, as the paths that use it spell it */
    char canon[PATH_MAX];      /* its canonical guest path */
};

static struct dir_cache dir_cache;
static int dir_cache_lock;
static unsigned dir_cache_gen = 1;

void hp_invalidate(void)
{
    __atomic_add_fetch(&dir_cache_gen, 1, __ATOMIC_ACQ_REL);
}

static bool try_lock(void)
{
    return !__atomic_exchange_n(&dir_cache_lock, 1, __ATOMIC_ACQUIRE);
}

static void unlock(void)
{
    __atomic_store_n(&dir_cache_lock, 0, __ATOMIC_RELEASE);
}

/* An absolute path without "", ".", ".." components or a trailing "/", with a parent other than
 * "/": the length of its directory part, else 0. */
static size_t clean_dir_len(const char *abs)
{
    size_t last = 0, i;

    for (i = 0; abs[i]; i++) {
        if (abs[i] != '/')
            continue;
        if (abs[i + 1] == '/' || abs[i + 1] == '\0')
            return 0;
        if (abs[i + 1] == '.' && (abs[i + 2] == '/' || abs[i + 2] == '\0' ||
                                  (abs[i + 2] == '.' && (abs[i + 3] == '/' || abs[i + 3] == '\0'))))
            return 0;
        last = i;
    }
    return last;
}

/* The canonical guest directory of abs[0..dlen) into canon, from the cache or a walk that then
 * fills it. false when it is no existing directory (the caller walks the whole path instead). */
static bool cached_dir(const struct hp_config *c, const char *abs, size_t dlen, char *canon)
{
    unsigned gen = __atomic_load_n(&dir_cache_gen, __ATOMIC_ACQUIRE);
    char dir[PATH_MAX], host[PATH_MAX];
    struct stat st;

    if (try_lock()) {
        bool hit = dir_cache.gen == gen && dir_cache.len == dlen && memcmp(dir_cache.guest, abs, dlen) == 0;

        if (hit)
            memcpy(canon, dir_cache.canon, strlen(dir_cache.canon) + 1);
        unlock();
        if (hit)
            return true;
    }
    memcpy(dir, abs, dlen);
    dir[dlen] = '\0';
    if (gp_canonical(&c->ctx, dir, GP_FOLLOW_LAST, canon, PATH_MAX) < 0 ||
        gp_map_canonical(&c->ctx, canon, host, sizeof(host)) < 0 ||
        hp_sys_fstatat(AT_FDCWD, host, &st, 0) < 0 || !S_ISDIR(st.st_mode))
        return false;
    if (strcmp(canon, dir) != 0)
        return true; /* usable now, not remembered: only directories reached through no symlink are */
    if (try_lock()) {
        dir_cache.gen = gen;
        dir_cache.len = dlen;
        memcpy(dir_cache.guest, dir, dlen + 1);
        memcpy(dir_cache.canon, canon, strlen(canon) + 1);
        unlock();
    }
    return true;
}

/* The flags of gp_to_host for hp_path's flags. */
static int gp_flags(int flags)
{
    int gp = (flags & HP_FOLLOW) ? GP_FOLLOW_LAST : 0;

    if (flags & (HP_PARENT | HP_RMDIR | HP_UNLINK | HP_RENAME))
        gp = GP_PARENT;
    if (flags & (HP_RMDIR | HP_UNLINK | HP_RENAME))
        gp |= GP_NO_MOUNT;
    if (flags & HP_RMDIR)
        gp |= GP_RMDIR;
    if (flags & HP_UNLINK)
        gp |= GP_UNLINK;
    return gp;
}

/* Whether the canonical guest path is a binding's own guest path (a mount point). */
static bool is_binding(const struct hp_config *c, const char *canon)
{
    size_t len = strlen(canon);

    for (size_t i = 0; i < c->ctx.n_bindings; i++) {
        if (c->ctx.bindings[i].guest_len == len && memcmp(c->ctx.bindings[i].guest, canon, len) == 0)
            return true;
    }
    return false;
}

/* gp_to_host of an absolute guest path through the directory cache; 1 when the caller must walk. */
static int via_cache(const struct hp_config *c, const char *abs, int flags, char *buf)
{
    char canon[PATH_MAX];
    size_t dlen = clean_dir_len(abs), clen, nlen;
    struct stat st;

    if (dlen == 0 || !cached_dir(c, abs, dlen, canon))
        return 1;
    clen = strlen(canon);
    nlen = strlen(abs + dlen);  /* "/name" */
    if (clen + nlen + 1 > PATH_MAX)
        return 1;
    memcpy(canon + (clen == 1 ? 0 : clen), abs + dlen, nlen + 1);
    if ((flags & (HP_RMDIR | HP_UNLINK | HP_RENAME)) && is_binding(c, canon))
        return 1; /* a mount point: the walk gives the error */
    if (gp_map_canonical(&c->ctx, canon, buf, PATH_MAX) < 0)
        return 1;
    if ((flags & HP_FOLLOW) && hp_sys_fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        return 1; /* a symlink to follow: its target is a guest path */
    return 0;
}

const char *hp_path(int dirfd, const char *path, int flags, char *buf)
{
    const struct hp_config *c = hp_conf();
    char abs[PATH_MAX];
    int rc;

    if (!path) {
        errno = EFAULT;
        return NULL;
    }
    if (!c || path[0] == '\0')
        return path;
    if ((flags & HP_WRITE) && c->n_ro)
        flags |= HP_NOFAST;
    if (path[0] != '/' && !(flags & HP_NOFAST) && hp_plain_name(c, path)) {
        struct stat st;

        /* A name in a real directory: the kernel finds the same file, unless it is a symlink
         * that must be followed (its target is a guest path). HP_PARENT never follows it. */
        if (!(flags & HP_FOLLOW) || (flags & (HP_PARENT | HP_RMDIR | HP_UNLINK | HP_RENAME)))
            return path;
        if (hp_sys_fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
            return path;
    }
    if (path[0] == '/' && kernel_path(c, path)) {
        if ((flags & HP_FOLLOW) && c->exe[0] && hp_is_proc_exe(path)) {
            path = c->exe; /* the program's file, not the loader's (procself.c) */
        } else {
            /* /proc/self/root/..., /proc/self/cwd/../..: the kernel would leave the rootfs there */
            rc = strncmp(path, "/proc/", 6) == 0
                     ? gp_proc_magic(&c->ctx, path, (flags & HP_FOLLOW) ? GP_FOLLOW_LAST : 0, buf, PATH_MAX)
                     : 1;
            if (rc == 1)
                return path;
            if (rc < 0) {
                errno = -rc;
                return NULL;
            }
            if ((flags & HP_WRITE) && c->n_ro && read_only_host(c, buf)) {
                errno = EROFS;
                return NULL;
            }
            return buf;
        }
    }
    rc = absolute(dirfd, path, abs);
    if (rc == 1)
        return path;
    if (rc == 0 && via_cache(c, abs, flags, buf) != 0)
        rc = gp_to_host(&c->ctx, abs, gp_flags(flags), buf, PATH_MAX);
    if (rc < 0) {
        hp_debug("hpcbox-preload: %s: %s", path, strerror(-rc));
        errno = -rc;
        return NULL;
    }
    if ((flags & HP_WRITE) && c->n_ro && read_only_host(c, buf)) {
        errno = EROFS;
        return NULL;
    }
    return buf;
}

int hp_canonical(int dirfd, const char *path, int flags, char *out)
{
    const struct hp_config *c = hp_conf();
    char abs[PATH_MAX];
    int rc;

    if (!c)
        return -ENOSYS;
    if (!path || !*path)
        return -ENOENT;
    rc = absolute(dirfd, path, abs);
    if (rc == 1)
        return -EXDEV;
    if (rc < 0)
        return rc;
    return gp_canonical(&c->ctx, abs, (flags & HP_FOLLOW) ? GP_FOLLOW_LAST : 0, out, PATH_MAX);
}

int hp_check_move(int olddirfd, const char *old, int newdirfd, const char *new, int kind, int follow,
                  unsigned flags)
{
    const struct hp_config *c = hp_conf();
    char abs[PATH_MAX], canon[2][PATH_MAX];
    const char *names[2] = {old, new};
    int dirfds[2] = {olddirfd, newdirfd};

    if (!c || !old || !new || !*old || !*new)
        return 0;
    for (int i = 0; i < 2; i++) {
        int gp = (i == 1 || kind == GP_MOVE_RENAME) ? GP_PARENT : ((follow & HP_FOLLOW) ? GP_FOLLOW_LAST : 0);

        if (absolute(dirfds[i], names[i], abs) != 0 || gp_canonical(&c->ctx, abs, gp, canon[i], PATH_MAX) < 0)
            return 0; /* outside the guest, or an error the kernel gives on the host path */
    }
    return gp_check_move(&c->ctx, canon[0], canon[1], kind, flags);
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
    if (read_only_host(&config, next.root))
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
            if (strcmp(config.ctx.bindings[i].guest, kernel_fs[k]) == 0)
                config.kernel_fs[k] = strcmp(config.ctx.bindings[i].host, kernel_fs[k]) == 0;
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

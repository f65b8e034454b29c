/* User and group lookups from the container's /etc/passwd and /etc/group.
 *
 * glibc >= 2.34 (nss_files inside libc) and musl open these files internally, never through the
 * wrapped fopen, so a contained program would see the host's users. The lookups here read the
 * guest's files (opened through the library's translation), parsed here (musl has no fgetpwent_r):
 * the "files" source only,
 * which is what container images use; a host's LDAP or sssd is not consulted. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdlib.h>
#include <pwd.h>
#include <stdio.h>
#include <shadow.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

#define PASSWD_FILE "/etc/passwd"
#define GROUP_FILE "/etc/group"

/* Open a guest file for reading (through the library's own translation). */
static FILE *guest_open(const char *path)
{
    char buf[PATH_MAX];
    const char *p = hp_path(AT_FDCWD, path, HP_FOLLOW | HP_NOFAST, buf);

    return p ? REAL(fopen)(p, "re") : NULL;
}

/* Split line (no newline) at ':' into at most n fields; the number of fields. */
static int split(char *line, char **fields, int n)
{
    int k = 0;

    fields[k++] = line;
    for (char *c = line; *c && k < n; c++) {
        if (*c == ':') {
            *c = '\0';
            fields[k++] = c + 1;
        }
    }
    return k;
}

static unsigned long id_of(const char *s, bool *ok)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    *ok = *s && !*end;
    return v;
}

/* One passwd line into pw, its strings in buf: 0, ENOENT (not a valid entry) or ERANGE. */
static int parse_pw(const char *line, struct passwd *pw, char *buf, size_t len)
{
    char *f[7];
    size_t n = strlen(line) + 1;
    bool ok_uid, ok_gid;

    if (n > len)
        return ERANGE;
    memcpy(buf, line, n);
    if (split(buf, f, 7) != 7)
        return ENOENT;
    pw->pw_name = f[0];
    pw->pw_passwd = f[1];
    pw->pw_uid = (uid_t)id_of(f[2], &ok_uid);
    pw->pw_gid = (gid_t)id_of(f[3], &ok_gid);
    pw->pw_gecos = f[4];
    pw->pw_dir = f[5];
    pw->pw_shell = f[6];
    return ok_uid && ok_gid ? 0 : ENOENT;
}

/* One group line into gr: the strings, then the member pointers (aligned) in buf. */
static int parse_gr(const char *line, struct group *gr, char *buf, size_t len)
{
    char *f[4];
    size_t n = strlen(line) + 1, members = 1, at;
    bool ok_gid;
    char **mem;

    if (n > len)
        return ERANGE;
    memcpy(buf, line, n);
    if (split(buf, f, 4) != 4)
        return ENOENT;
    for (const char *c = f[3]; *c; c++)
        members += *c == ',';
    at = (n + sizeof(char *) - 1) & ~(sizeof(char *) - 1);
    if (at + (members + 1) * sizeof(char *) > len)
        return ERANGE;
    mem = (char **)(void *)(buf + at);
    members = 0;
    for (char *c = f[3]; *c;) {
        char *e = strchr(c, ',');

        if (e)
            *e = '\0';
        if (*c)
            mem[members++] = c;
        if (!e)
            break;
        c = e + 1;
    }
    mem[members] = NULL;
    gr->gr_name = f[0];
    gr->gr_passwd = f[1];
    gr->gr_gid = (gid_t)id_of(f[2], &ok_gid);
    gr->gr_mem = mem;
    return ok_gid ? 0 : ENOENT;
}

/* The next valid entry of f: 0, ENOENT at the end, ERANGE (buffer too small). */
/* The next entry of f that parse() accepts: 0, ENOENT at the end, ERANGE (buffer too small). */
static int next_entry(FILE *f, int (*parse)(const char *, void *, char *, size_t), void *entry,
                      char *buf, size_t len)
{
    char *line = NULL;
    size_t cap = 0;
    int rc = ENOENT;

    while (getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        rc = parse(line, entry, buf, len);
        if (rc == 0 || rc == ERANGE)
            break;
        rc = ENOENT;
    }
    free(line);
    return rc;
}

static int parse_pw_any(const char *line, void *entry, char *buf, size_t len)
{
    return parse_pw(line, entry, buf, len);
}

static int parse_gr_any(const char *line, void *entry, char *buf, size_t len)
{
    return parse_gr(line, entry, buf, len);
}

static int next_pw(FILE *f, struct passwd *pw, char *buf, size_t len, struct passwd **result)
{
    int rc = next_entry(f, parse_pw_any, pw, buf, len);

    *result = rc == 0 ? pw : NULL;
    return rc;
}

static int next_gr(FILE *f, struct group *gr, char *buf, size_t len, struct group **result)
{
    int rc = next_entry(f, parse_gr_any, gr, buf, len);

    *result = rc == 0 ? gr : NULL;
    return rc;
}

static int find_pw(const char *name, uid_t uid, struct passwd *pw, char *buf, size_t len,
                   struct passwd **result)
{
    FILE *f = guest_open(PASSWD_FILE);
    struct passwd *got;
    int rc;

    *result = NULL;
    if (!f)
        return errno == ENOENT ? 0 : errno;
    while ((rc = next_pw(f, pw, buf, len, &got)) == 0) {
        if (name ? strcmp(got->pw_name, name) == 0 : got->pw_uid == uid) {
            *result = got;
            break;
        }
    }
    fclose(f);
    return rc == ENOENT ? 0 : rc;
}

static int find_gr(const char *name, gid_t gid, struct group *gr, char *buf, size_t len,
                   struct group **result)
{
    FILE *f = guest_open(GROUP_FILE);
    struct group *got;
    int rc;

    *result = NULL;
    if (!f)
        return errno == ENOENT ? 0 : errno;
    while ((rc = next_gr(f, gr, buf, len, &got)) == 0) {
        if (name ? strcmp(got->gr_name, name) == 0 : got->gr_gid == gid) {
            *result = got;
            break;
        }
    }
    fclose(f);
    return rc == ENOENT ? 0 : rc;
}

WRAP int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len, struct passwd **result)
{
    if (!hp_conf())
        return REAL(getpwnam_r)(name, pw, buf, len, result);
    return find_pw(name, 0, pw, buf, len, result);
}

WRAP int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len, struct passwd **result)
{
    if (!hp_conf())
        return REAL(getpwuid_r)(uid, pw, buf, len, result);
    return find_pw(NULL, uid, pw, buf, len, result);
}

WRAP int getgrnam_r(const char *name, struct group *gr, char *buf, size_t len, struct group **result)
{
    if (!hp_conf())
        return REAL(getgrnam_r)(name, gr, buf, len, result);
    return find_gr(name, 0, gr, buf, len, result);
}

WRAP int getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, struct group **result)
{
    if (!hp_conf())
        return REAL(getgrgid_r)(gid, gr, buf, len, result);
    return find_gr(NULL, gid, gr, buf, len, result);
}

/* The non-reentrant forms share one static result each, as libc's do. The buffers are allocated on
 * first use: 68 KiB of them in .bss put the variables linked after them on a page of their own
 * (one page fault more in every process). */
#define PW_BUF_SIZE 4096
#define GR_BUF_SIZE 65536
static struct passwd pw_static HP_DATA;
static char *pw_buf;
static struct group gr_static HP_DATA;
static char *gr_buf;

/* *slot, allocated (size bytes) if not yet; NULL with errno ENOMEM. */
static char *nss_buffer(char **slot, size_t size)
{
    char *buf = __atomic_load_n(slot, __ATOMIC_ACQUIRE), *expected = NULL;

    if (buf)
        return buf;
    buf = malloc(size);
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    if (!__atomic_compare_exchange_n(slot, &expected, buf, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        free(buf); /* another thread's came first */
        buf = expected;
    }
    return buf;
}


WRAP struct passwd *getpwnam(const char *name)
{
    struct passwd *result;

    if (!hp_conf())
        return REAL(getpwnam)(name);
    char *buf = nss_buffer(&pw_buf, PW_BUF_SIZE);
    int rc = buf ? find_pw(name, 0, &pw_static, buf, PW_BUF_SIZE, &result) : ENOMEM;

    if (rc)
        errno = rc;
    return rc ? NULL : result;
}

WRAP struct passwd *getpwuid(uid_t uid)
{
    struct passwd *result;

    if (!hp_conf())
        return REAL(getpwuid)(uid);
    char *buf = nss_buffer(&pw_buf, PW_BUF_SIZE);
    int rc = buf ? find_pw(NULL, uid, &pw_static, buf, PW_BUF_SIZE, &result) : ENOMEM;

    if (rc)
        errno = rc;
    return rc ? NULL : result;
}

WRAP struct group *getgrnam(const char *name)
{
    struct group *result;

    if (!hp_conf())
        return REAL(getgrnam)(name);
    char *buf = nss_buffer(&gr_buf, GR_BUF_SIZE);
    int rc = buf ? find_gr(name, 0, &gr_static, buf, GR_BUF_SIZE, &result) : ENOMEM;

    if (rc)
        errno = rc;
    return rc ? NULL : result;
}

WRAP struct group *getgrgid(gid_t gid)
{
    struct group *result;

    if (!hp_conf())
        return REAL(getgrgid)(gid);
    char *buf = nss_buffer(&gr_buf, GR_BUF_SIZE);
    int rc = buf ? find_gr(NULL, gid, &gr_static, buf, GR_BUF_SIZE, &result) : ENOMEM;

    if (rc)
        errno = rc;
    return rc ? NULL : result;
}

/* Enumeration: one stream per database, as libc's. */
static FILE *pw_stream, *gr_stream;

WRAP void setpwent(void)
{
    if (!hp_conf()) {
        REAL(setpwent)();
        return;
    }
    if (pw_stream)
        rewind(pw_stream);
}

WRAP void endpwent(void)
{
    if (!hp_conf()) {
        REAL(endpwent)();
        return;
    }
    if (pw_stream)
        fclose(pw_stream);
    pw_stream = NULL;
}

WRAP struct passwd *getpwent(void)
{
    struct passwd *result = NULL;
    char *buf;

    if (!hp_conf())
        return REAL(getpwent)();
    if (!pw_stream && !(pw_stream = guest_open(PASSWD_FILE)))
        return NULL;
    buf = nss_buffer(&pw_buf, PW_BUF_SIZE);
    if (!buf || next_pw(pw_stream, &pw_static, buf, PW_BUF_SIZE, &result) != 0)
        return NULL;
    return result;
}

WRAP void setgrent(void)
{
    if (!hp_conf()) {
        REAL(setgrent)();
        return;
    }
    if (gr_stream)
        rewind(gr_stream);
}

WRAP void endgrent(void)
{
    if (!hp_conf()) {
        REAL(endgrent)();
        return;
    }
    if (gr_stream)
        fclose(gr_stream);
    gr_stream = NULL;
}

WRAP struct group *getgrent(void)
{
    struct group *result = NULL;
    char *buf;

    if (!hp_conf())
        return REAL(getgrent)();
    if (!gr_stream && !(gr_stream = guest_open(GROUP_FILE)))
        return NULL;
    buf = nss_buffer(&gr_buf, GR_BUF_SIZE);
    if (!buf || next_gr(gr_stream, &gr_static, buf, GR_BUF_SIZE, &result) != 0)
        return NULL;
    return result;
}

/* getgrouplist: the group itself plus every group of the guest's /etc/group listing the user. */
WRAP int getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups)
{
    FILE *f;
    struct group gr, *got;
    char *buf;
    int n = 0, max;

    if (!hp_conf())
        return REAL(getgrouplist)(user, group, groups, ngroups);
    max = *ngroups;
    if (n < max)
        groups[n] = group;
    n++;
    buf = nss_buffer(&gr_buf, GR_BUF_SIZE);
    if (!buf)
        return -1;
    f = guest_open(GROUP_FILE);
    while (f && next_gr(f, &gr, buf, GR_BUF_SIZE, &got) == 0) {
        if (got->gr_gid == group)
            continue;
        for (char **m = got->gr_mem; m && *m; m++) {
            if (strcmp(*m, user) == 0) {
                if (n < max)
                    groups[n] = got->gr_gid;
                n++;
                break;
            }
        }
    }
    if (f)
        fclose(f);
    *ngroups = n;
    return n > max ? -1 : n;
}

/* lckpwdf/ulckpwdf: glibc opens /etc/.pwd.lock inside itself (useradd, groupadd, passwd lock the
 * user database with it): the container's lock file instead, locked the same way (a write lock
 * on the whole file, given up after 15 seconds as glibc does). */
#define PWD_LOCK_FILE "/etc/.pwd.lock"
#define PWD_LOCK_TRIES 1500 /* 10 ms apart */

static int pwd_lock_fd = -1;

WRAP int lckpwdf(void)
{
    char buf[PATH_MAX];
    const char *p;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd;

    if (!hp_conf())
        return REAL(lckpwdf)();
    if (pwd_lock_fd >= 0)
        return -1; /* this process holds it already (glibc's answer) */
    p = hp_path(AT_FDCWD, PWD_LOCK_FILE, HP_FOLLOW | HP_NOFAST | HP_WRITE, buf);
    if (!p)
        return -1;
    fd = REAL(open)(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    for (int i = 0; i < PWD_LOCK_TRIES; i++) {
        struct timespec pause = {0, 10 * 1000 * 1000};

        if (fcntl(fd, F_SETLK, &fl) == 0) {
            pwd_lock_fd = fd;
            return 0;
        }
        if (errno != EACCES && errno != EAGAIN && errno != EINTR)
            break;
        nanosleep(&pause, NULL);
    }
    close(fd);
    return -1;
}

WRAP int ulckpwdf(void)
{
    int fd = pwd_lock_fd;

    if (!hp_conf())
        return REAL(ulckpwdf)();
    if (fd < 0)
        return -1;
    pwd_lock_fd = -1;
    return close(fd);
}

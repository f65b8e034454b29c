/* exec: execve/execveat in the guest. The kernel would read "#!" lines and PT_INTERP as host
 * paths, so the tracer does it: scripts become their interpreter's argv (as the kernel builds it),
 * dynamic ELF programs are started through the GUEST's loader ("ld.so --argv0 ARGV0 PROGRAM ..."),
 * and the program is remembered so that /proc/<pid>/exe can name it.
 * Over 500 lines: one exec path (argv rewriting, #!/ELF classification, the loader chain, the
 * prctl mm map after it) whose steps share the stop's state and make sense only together. */
#define _GNU_SOURCE
#include "tracer.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD_SIZE 256      /* what the kernel reads of a file to recognise it (BINPRM_BUF_SIZE) */
#define MAX_DEPTH 5        /* nested #! interpreters */
#define MAX_ARGS (1 << 20)

struct arg_item {
    uint64_t addr;   /* a string in the tracee, or 0 */
    char *local;     /* a string of ours (owned), written to the tracee at the end */
};

struct args {
    struct arg_item *v;
    size_t n, cap;
};

static void args_free(struct args *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].local);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* Insert at position pos: a tracee string (addr) or a copy of local. */
static int args_insert(struct args *a, size_t pos, uint64_t addr, const char *local)
{
    struct arg_item item = {addr, NULL};

    if (local && !(item.local = strdup(local)))
        return -ENOMEM;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct arg_item *v = realloc(a->v, cap * sizeof(*v));

        if (!v) {
            free(item.local);
            return -ENOMEM;
        }
        a->v = v;
        a->cap = cap;
    }
    memmove(a->v + pos + 1, a->v + pos, (a->n - pos) * sizeof(*a->v));
    a->v[pos] = item;
    a->n++;
    return 0;
}

static void args_drop_first(struct args *a)
{
    if (a->n == 0)
        return;
    free(a->v[0].local);
    memmove(a->v, a->v + 1, (a->n - 1) * sizeof(*a->v));
    a->n--;
}

static int args_read(pid_t tid, uint64_t addr, struct args *a)
{
    uint64_t chunk[64];

    if (addr == 0)
        return 0; /* NULL argv: Linux treats it as empty */
    for (size_t i = 0; i < MAX_ARGS; i += 64) {
        int rc = mem_read(tid, addr + i * sizeof(uint64_t), chunk, sizeof(chunk));

        if (rc < 0) { /* near the end of a mapping: one pointer at a time */
            for (size_t j = 0; j < 64; j++) {
                rc = mem_read(tid, addr + (i + j) * sizeof(uint64_t), &chunk[j], sizeof(chunk[j]));
                if (rc < 0)
                    return rc;
                if (chunk[j] == 0)
                    break;
            }
        }
        for (size_t j = 0; j < 64; j++) {
            if (chunk[j] == 0)
                return 0;
            rc = args_insert(a, a->n, chunk[j], NULL);
            if (rc < 0)
                return rc;
        }
    }
    return -E2BIG;
}

int exec_parse_shebang(const char *buf, size_t len, char *interp, size_t isize, char *arg, size_t asize)
{
    size_t i = 2, start, end;

    if (len < 2 || buf[0] != '#' || buf[1] != '!')
        return -ENOEXEC;
    end = i;
    while (end < len && buf[end] != '\n' && buf[end] != '\0')
        end++;
    while (end > i && (buf[end - 1] == ' ' || buf[end - 1] == '\t'))
        end--;
    while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    if (i == end)
        return -ENOEXEC; /* "#!" alone */
    start = i;
    while (i < end && buf[i] != ' ' && buf[i] != '\t')
        i++;
    if (i - start >= isize)
        return -ENAMETOOLONG;
    memcpy(interp, buf + start, i - start);
    interp[i - start] = '\0';
    while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    if (end - i >= asize)
        return -E2BIG;
    memcpy(arg, buf + i, end - i);
    arg[end - i] = '\0';
    return 0;
}

int exec_elf_interp(int fd, const unsigned char *head, size_t head_len, char *interp, size_t size)
{
    Elf64_Ehdr eh;

    if (head_len < sizeof(eh) || memcmp(head, ELFMAG, SELFMAG) != 0 || head[EI_CLASS] != ELFCLASS64)
        return -ENOEXEC;
    memcpy(&eh, head, sizeof(eh));
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256)
        return -ENOEXEC;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        ssize_t n = pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph)));

        if (n != (ssize_t)sizeof(ph))
            return -ENOEXEC;
        if (ph.p_type != PT_INTERP)
            continue;
        if (ph.p_filesz < 2 || ph.p_filesz > size)
            return -ENOEXEC;
        n = pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset);
        if (n != (ssize_t)ph.p_filesz || interp[ph.p_filesz - 1] != '\0')
            return -ENOEXEC;
        return 1;
    }
    return 0;
}

enum file_kind { K_SCRIPT, K_DYNAMIC, K_STATIC, K_OTHER };

/* What the kernel would do with the host file: its kind, the #! line or PT_INTERP. */
static int classify(const char *host, char *interp, char *arg, enum file_kind *kind)
{
    unsigned char head[HEAD_SIZE];
    struct stat st;
    ssize_t n;
    int fd, rc;

    if (faccessat(AT_FDCWD, host, X_OK, AT_EACCESS) < 0)
        return -errno;
    fd = open(host, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EACCES;
    }
    n = pread(fd, head, sizeof(head), 0);
    if (n < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = exec_parse_shebang((const char *)head, (size_t)n, interp, PATH_MAX, arg, PATH_MAX);
    if (rc == 0) {
        *kind = K_SCRIPT;
    } else {
        rc = exec_elf_interp(fd, head, (size_t)n, interp, PATH_MAX);
        *kind = rc == 1 ? K_DYNAMIC : rc == 0 ? K_STATIC : K_OTHER;
        rc = 0;
    }
    close(fd);
    return rc;
}

/* Whether the loader at host understands --argv0 (glibc >= 2.33 and musl do): cached by inode. */
static bool loader_has_argv0(struct tracer *t, const char *host)
{
    struct stat st;
    struct interp_info *slot;
    void *map;
    int fd = open(host, O_RDONLY | O_CLOEXEC);
    bool found = false;

    if (fd < 0)
        return false;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return false;
    }
    for (unsigned i = 0; i < INTERP_CACHE; i++) {
        if (t->interps[i].valid && t->interps[i].dev == st.st_dev && t->interps[i].ino == st.st_ino) {
            close(fd);
            return t->interps[i].argv0;
        }
    }
    map = st.st_size > 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (map != MAP_FAILED) {
        found = memmem(map, (size_t)st.st_size, "--argv0", 8) != NULL;
        munmap(map, (size_t)st.st_size);
    }
    close(fd);
    slot = &t->interps[t->next_interp++ % INTERP_CACHE];
    *slot = (struct interp_info){.dev = st.st_dev, .ino = st.st_ino, .valid = true, .argv0 = found};
    return found;
}

/* The kernel's process name for an exec of path: its last component, cut to 15 bytes. */
static void comm_name(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t len = strlen(base);

    if (len >= size)
        len = size - 1;
    memcpy(out, base, len);
    out[len] = '\0';
}

/* For execveat: the guest path of dirfd/path (or of the fd itself with AT_EMPTY_PATH).
 * 1: the directory lies outside the guest (leave the call alone). */
static int execat_filename(struct tracer *t, struct stop *s, char *name)
{
    int dirfd = (int)regs_arg(&s->regs, 0);
    char link[64], host[PATH_MAX], dir[PATH_MAX];
    size_t dlen, nlen = strlen(name);
    ssize_t n;
    int rc;

    if (name[0] == '/' || (dirfd == AT_FDCWD && name[0] != '\0'))
        return 0;
    snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)s->tid, dirfd);
    n = readlink(link, host, sizeof(host) - 1);
    if (n < 0)
        return -EBADF;
    host[n] = '\0';
    rc = gp_to_guest(chroot_gp(t, s->tid), host, dir, sizeof(dir));
    if (rc != 0)
        return rc < 0 ? rc : 1;
    dlen = strlen(dir);
    if (nlen == 0) {
        memcpy(name, dir, dlen + 1);
        return 0;
    }
    if (dlen + 1 + nlen + 1 > PATH_MAX)
        return -ENAMETOOLONG;
    memmove(name + dlen + 1, name, nlen + 1);
    memcpy(name, dir, dlen);
    name[dlen] = '/';
    return 0;
}

/* Write the argv and the program path into the tracee and point the registers at them. */
static int install(struct tracer *t, struct stop *s, const char *host, struct args *a, bool argv_changed)
{
    uint64_t path_at, argv_at, *vec;
    int rc = scratch_put(&s->scratch, host, strlen(host) + 1, &path_at);

    if (rc < 0)
        return rc;
    if (argv_changed) {
        vec = calloc(a->n + 1, sizeof(*vec));
        if (!vec)
            return -ENOMEM;
        for (size_t i = 0; i < a->n && rc == 0; i++) {
            if (a->v[i].local)
                rc = scratch_put(&s->scratch, a->v[i].local, strlen(a->v[i].local) + 1, &vec[i]);
            else
                vec[i] = a->v[i].addr;
        }
        if (rc == 0)
            rc = scratch_put(&s->scratch, vec, (a->n + 1) * sizeof(*vec), &argv_at);
        free(vec);
        if (rc < 0)
            return rc;
    }
    if (s->sc->kind == SK_EXECAT) { /* becomes a plain execve of the host path */
        uint64_t envp = regs_arg(&s->regs, 3);

        if (!argv_changed)
            argv_at = regs_arg(&s->regs, 2);
        regs_set_nr(&s->regs, t->nr_execve);
        regs_set_arg(&s->regs, 2, envp);
    } else if (!argv_changed) {
        argv_at = regs_arg(&s->regs, 1);
    }
    regs_set_arg(&s->regs, 0, path_at);
    regs_set_arg(&s->regs, 1, argv_at);
    s->dirty = true;
    return 0;
}

static int resolve_chain(struct tracer *t, struct stop *s, char *filename, struct args *a,
                         char *exec_host, char *exe, bool *changed, unsigned char *argfix)
{
    char canon[PATH_MAX], host[PATH_MAX], interp[PATH_MAX], arg[PATH_MAX];

    for (int depth = 0;; depth++) {
        enum file_kind kind = K_OTHER;
        int rc = paths_translate(t, s->tid, filename, GP_FOLLOW_LAST, canon, host);

        if (rc == 1)
            return -ENOENT; /* relative to a cwd outside the guest */
        if (rc < 0)
            return rc;
        rc = classify(host, interp, arg, &kind);
        if (rc < 0)
            return rc;
        if (kind == K_SCRIPT) {
            if (depth >= MAX_DEPTH)
                return -ELOOP;
            /* the kernel's argv: interpreter, its one optional argument, the script as named */
            args_drop_first(a);
            if ((rc = args_insert(a, 0, 0, filename)) < 0 ||
                (arg[0] && (rc = args_insert(a, 0, 0, arg)) < 0) || (rc = args_insert(a, 0, 0, interp)) < 0)
                return rc;
            memcpy(filename, interp, strlen(interp) + 1);
            *changed = true;
            continue;
        }
        memcpy(exe, canon, strlen(canon) + 1);
        if (kind != K_DYNAMIC) {
            memcpy(exec_host, host, strlen(host) + 1);
            return 0;
        }
        /* the guest's loader runs the program: ld.so [--argv0 ARGV0] PROGRAM ARGS... */
        rc = paths_translate(t, s->tid, interp, GP_FOLLOW_LAST, NULL, exec_host);
        if (rc != 0)
            return rc < 0 ? rc : -ENOENT;
        if (access(exec_host, F_OK) < 0)
            return -ENOENT; /* as the kernel says when PT_INTERP is missing */
        if (a->n > 0 && loader_has_argv0(t, exec_host)) {
            struct arg_item argv0 = a->v[0];

            a->v[0].local = NULL; /* moved */
            args_drop_first(a);
            if ((rc = args_insert(a, 0, 0, canon)) < 0 || (rc = args_insert(a, 0, argv0.addr, argv0.local)) < 0 ||
                (rc = args_insert(a, 0, 0, "--argv0")) < 0 || (rc = args_insert(a, 0, 0, interp)) < 0) {
                free(argv0.local);
                return rc;
            }
            free(argv0.local);
            *argfix = ARGFIX_ARGV0;
        } else {
            args_drop_first(a);
            if ((rc = args_insert(a, 0, 0, canon)) < 0 || (rc = args_insert(a, 0, 0, interp)) < 0)
                return rc;
            *argfix = ARGFIX_PLAIN;
        }
        *changed = true;
        return 0;
    }
}

int exec_handle(struct tracer *t, struct stop *s)
{
    char filename[PATH_MAX], exec_host[PATH_MAX], exe[PATH_MAX], comm[16], host_comm[16];
    struct args a = {0};
    bool changed = false;
    unsigned char argfix = ARGFIX_NONE;
    int path_arg = s->sc->kind == SK_EXECAT ? 1 : 0;
    int rc = mem_read_string(s->tid, regs_arg(&s->regs, path_arg), filename, sizeof(filename));

    if (rc < 0)
        return 0; /* the kernel gives EFAULT/ENAMETOOLONG itself */
    if (s->sc->kind == SK_EXECAT) {
        rc = execat_filename(t, s, filename);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    if (filename[0] == '\0')
        return -ENOENT;
    comm_name(filename, comm, sizeof(comm));
    rc = args_read(s->tid, regs_arg(&s->regs, path_arg + 1), &a);
    if (rc == 0)
        rc = resolve_chain(t, s, filename, &a, exec_host, exe, &changed, &argfix);
    if (rc == 0)
        rc = install(t, s, exec_host, &a, changed);
    args_free(&a);
    if (rc < 0)
        return rc;
    free(s->proc->pending_exe);
    s->proc->pending_exe = strdup(exe); /* NULL on ENOMEM: /proc/self/exe then names the loader */
    s->proc->pending_argfix = argfix;
    /* the kernel names the process after the file given to execve; we exec another one */
    comm_name(exec_host, host_comm, sizeof(host_comm));
    if (strcmp(comm, host_comm) != 0)
        memcpy(s->proc->pending_comm, comm, sizeof(comm));
    else
        s->proc->pending_comm[0] = '\0';
    return 0;
}

/* ---- /proc/PID/cmdline of a program started through its loader ----
 * The kernel reports the argv area it built at exec: "LOADER\0--argv0\0ARGV0\0PROGRAM\0ARGS...".
 * At the exec event, before the loader runs, ARGV0 and PROGRAM trade places (the loader reads
 * them through the argv pointers, which are swapped too), so that the program's own argv,
 * "ARGV0\0ARGS...", is the tail of the area. At the program's first traced syscall the tracer
 * injects prctl(PR_SET_MM, PR_SET_MM_MAP) with the area's start moved there: unprivileged (the
 * exe file is left alone), with the other fields as /proc/PID/stat has them. */
#define ARG_MAX_STR 65536

void exec_fix_args(struct tracer *t, struct proc *p)
{
    struct regs regs;
    uint64_t sp, argc, argv[4];
    unsigned char fix = p->argfix;
    char *a0 = NULL, *prog = NULL, *buf = NULL;
    size_t l0, lp;

    (void)t;
    p->argfix = ARGFIX_NONE;
    p->arg_start = 0;
    if (fix == ARGFIX_NONE || regs_get(p->tid, &regs) < 0)
        return;
    sp = regs_sp(&regs);
    if (mem_read(p->tid, sp, &argc, sizeof(argc)) < 0 || argc < (fix == ARGFIX_ARGV0 ? 4 : 2) ||
        mem_read(p->tid, sp + 8, argv, sizeof(argv)) < 0)
        return;
    if (fix == ARGFIX_PLAIN) {
        p->arg_start = argv[1];
        return;
    }
    a0 = malloc(ARG_MAX_STR);
    prog = malloc(PATH_MAX);
    buf = malloc(ARG_MAX_STR + PATH_MAX);
    if (a0 && prog && buf && mem_read_string(p->tid, argv[2], a0, ARG_MAX_STR) == 0 &&
        mem_read_string(p->tid, argv[3], prog, PATH_MAX) == 0 &&
        argv[3] == argv[2] + (l0 = strlen(a0)) + 1) {
        uint64_t swapped[2];

        lp = strlen(prog);
        memcpy(buf, prog, lp + 1);
        memcpy(buf + lp + 1, a0, l0 + 1);
        swapped[0] = argv[2] + lp + 1; /* argv[2]: ARGV0, now after PROGRAM */
        swapped[1] = argv[2];          /* argv[3]: PROGRAM */
        if (mem_write(p->tid, argv[2], buf, lp + l0 + 2) == 0) {
            if (mem_write(p->tid, sp + 8 + 2 * 8, swapped, sizeof(swapped)) == 0) {
                p->arg_start = swapped[0];
            } else { /* the strings back as the pointers still have them */
                memcpy(buf, a0, l0 + 1);
                memcpy(buf + l0 + 1, prog, lp + 1);
                if (mem_write(p->tid, argv[2], buf, lp + l0 + 2) < 0)
                    fprintf(stderr, "hpcbox-ptrace: the arguments of %d are damaged\n", (int)p->tid);
            }
        }
    }
    free(a0);
    free(prog);
    free(buf);
}

int exec_mm_map(pid_t tid, uint64_t arg_start, uint64_t brk, struct prctl_mm_map *map)
{
    char path[64], text[2048], *field;
    unsigned long long v[53] = {0};
    ssize_t n;
    int fd, i;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    text[n] = '\0';
    field = strrchr(text, ')'); /* the name may hold spaces and parentheses */
    if (!field)
        return -EIO;
    /* fields from 3 (state) on, numbered as in proc(5) */
    for (i = 3, field += 2; i < 53 && *field; i++) {
        char *end;

        v[i] = strtoull(field, &end, 10);
        if (*end != ' ' && *end != '\n' && *end != '\0')
            v[i] = 0; /* the state letter */
        field = *end ? end + 1 : end;
    }
    if (i < 52 || v[48] == 0 || arg_start < v[48] || arg_start >= v[49])
        return -EIO; /* fields hidden from us, or not the area we arranged */
    memset(map, 0, sizeof(*map));
    map->start_code = v[26];
    map->end_code = v[27];
    map->start_stack = v[28];
    map->start_data = v[45];
    map->end_data = v[46];
    map->start_brk = v[47];
    map->brk = brk;
    map->arg_start = arg_start;
    map->arg_end = v[49];
    map->env_start = v[50];
    map->env_end = v[51];
    map->exe_fd = (uint32_t)-1;
    return 0;
}

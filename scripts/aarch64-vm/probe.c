/* A small program for the aarch64 VM checks (scripts/aarch64-vm-check), built twice for aarch64:
 * dynamic (through the container's glibc loader) and static. What it is asked, it answers on one
 * line of stdout; errors go to stderr with a non-zero status.
 *
 *   probe exe              readlink("/proc/self/exe")
 *   probe reexec           execv("/proc/self/exe", {"probe", "exe"})
 *   probe cwd DIR          chdir(DIR), then getcwd()
 *   probe ids              real and effective uid and gid
 *   probe forkexec PROG..  fork, execv(PROG, ...) in the child, print the child's wait status
 *   probe threads FILE     8 threads each open and stat FILE 50 times: "threads 8 ok SIZE"
 *   probe raise SIGNAL     raise(SIGNAL) with the default action
 *   probe owners PATH      uid:gid of PATH by stat, lstat, fstat, fstatat(dirfd, name) and statx
 *   probe names            /proc/self/comm and /proc/self/cmdline (NULs as spaces)
 *   probe spawn PROG..     posix_spawn (a vfork-style clone), print the child's wait status
 *   probe fifo PATH        open(PATH, O_RDONLY) of a new FIFO, interrupted by a SIGUSR1 handler
 *                          (SA_RESTART) while it blocks, then a child opens and writes it: the
 *                          restarted open must still reach the FIFO: "fifo x handled 1"
 *   probe unix PATH        bind an AF_UNIX socket at PATH, connect to it, pass a byte: "unix x"
 *   probe fexecve PROG..   open PROG, fexecve it (execveat(fd, "", AT_EMPTY_PATH))
 *   probe traceme          ptrace(PTRACE_TRACEME): "traceme ERRNO-NAME"
 *   probe as UID PROG..    drop every group, set the gid and uid to UID, execv(PROG, ...) (busybox's
 *                          setpriv cannot change ids; the VM's init runs the checks as a user so)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <libgen.h>
#include <spawn.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 50

static int fail(const char *what)
{
    fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
    return 1;
}

static int show_exe(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0)
        return fail("readlink /proc/self/exe");
    buf[n] = '\0';
    printf("%s\n", buf);
    return 0;
}

static int show_cwd(const char *dir)
{
    char buf[PATH_MAX];
    if (chdir(dir) != 0)
        return fail("chdir");
    if (getcwd(buf, sizeof buf) == NULL)
        return fail("getcwd");
    printf("%s\n", buf);
    return 0;
}

static int fork_exec(char **argv)
{
    int status;
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork");
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "probe: execv %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid)
        return fail("waitpid");
    printf("child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}

struct job {
    const char *file;
    long long size;
    int ok;
};

static void *work(void *arg)
{
    struct job *job = arg;
    struct stat st;
    for (int i = 0; i < ROUNDS; i++) {
        int fd = open(job->file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return NULL;
        int seen = fstat(fd, &st);
        close(fd);
        if (seen != 0 || stat(job->file, &st) != 0)
            return NULL;
    }
    job->size = (long long)st.st_size;
    job->ok = 1;
    return NULL;
}

static int threads(const char *file)
{
    pthread_t ids[THREADS];
    struct job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){file, -1, 0};
        int rc = pthread_create(&ids[i], NULL, work, &jobs[i]);
        if (rc != 0) {
            errno = rc;
            return fail("pthread_create");
        }
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        int rc = pthread_join(ids[i], NULL);
        if (rc != 0) {
            errno = rc;
            return fail("pthread_join");
        }
        ok += jobs[i].ok && jobs[i].size == jobs[0].size;
    }
    printf("threads %d ok %lld\n", ok, jobs[0].size);
    return ok == THREADS ? 0 : 1;
}

static int owners(const char *path)
{
    struct stat st[4];
    struct statx sx;
    char dir[PATH_MAX], base[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(base, sizeof base, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || dfd < 0)
        return fail("open");
    if (stat(path, &st[0]) != 0 || lstat(path, &st[1]) != 0 || fstat(fd, &st[2]) != 0 ||
        fstatat(dfd, basename(base), &st[3], 0) != 0 || statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx) != 0)
        return fail("stat");
    printf("stat %u:%u lstat %u:%u fstat %u:%u fstatat %u:%u statx %u:%u\n", (unsigned)st[0].st_uid,
           (unsigned)st[0].st_gid, (unsigned)st[1].st_uid, (unsigned)st[1].st_gid, (unsigned)st[2].st_uid,
           (unsigned)st[2].st_gid, (unsigned)st[3].st_uid, (unsigned)st[3].st_gid, sx.stx_uid, sx.stx_gid);
    close(fd);
    close(dfd);
    return 0;
}

static int names(void)
{
    char buf[4096];
    for (int i = 0; i < 2; i++) {
        int fd = open(i ? "/proc/self/cmdline" : "/proc/self/comm", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return fail("open /proc/self");
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0)
            return fail("read /proc/self");
        for (ssize_t j = 0; j < n; j++)
            buf[j] = (buf[j] == '\0' || buf[j] == '\n') ? ' ' : buf[j];
        while (n > 0 && buf[n - 1] == ' ')
            n--;
        buf[n] = '\0';
        printf("%s%s", buf, i ? "\n" : ": ");
    }
    return 0;
}

static int spawn(char **argv)
{
    extern char **environ;
    pid_t pid;
    int status, rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        errno = rc;
        return fail("posix_spawn");
    }
    if (waitpid(pid, &status, 0) != pid)
        return fail("waitpid");
    printf("spawned status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

/* the child: wait until the parent blocks in openat (aarch64: 56, x86_64: 257 in /proc/PID/syscall),
 * interrupt it, then wait for the handler to have run before opening the FIFO's other end */
static int fifo_writer(pid_t parent, const char *path)
{
    char file[64], buf[64];
    snprintf(file, sizeof file, "/proc/%d/syscall", (int)parent);
    for (int tries = 0; tries < 6000; tries++) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (fd >= 0)
            close(fd);
        buf[n > 0 ? n : 0] = '\0';
        if (!strncmp(buf, "56 ", 3) || !strncmp(buf, "257 ", 4))
            break;
        usleep(10000);
    }
    if (kill(parent, SIGUSR1) != 0)
        return 1;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "x", 1) != 1)
        return 1;
    return 0;
}

static int fifo(const char *path)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &sa, NULL) != 0 || mkfifo(path, 0600) != 0)
        return fail("sigaction/mkfifo");
    pid_t parent = getpid(), child = fork();
    if (child < 0)
        return fail("fork");
    if (child == 0)
        _exit(fifo_writer(parent, path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail("open of the FIFO");
    char c = '?';
    if (read(fd, &c, 1) != 1)
        return fail("read of the FIFO");
    int status;
    if (waitpid(child, &status, 0) != child)
        return fail("waitpid");
    printf("fifo %c handled %d status %d\n", c, (int)handled, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

static int unix_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server < 0 || client < 0)
        return fail("socket");
    if (bind(server, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(server, 1) != 0)
        return fail("bind/listen");
    if (connect(client, (struct sockaddr *)&addr, sizeof addr) != 0)
        return fail("connect");
    int peer = accept(server, NULL, NULL);
    char c = '?';
    if (peer < 0 || write(client, "x", 1) != 1 || read(peer, &c, 1) != 1)
        return fail("accept/write/read");
    printf("unix %c\n", c);
    return 0;
}

static int fexecve_program(char **argv)
{
    extern char **environ;
    int fd = open(argv[0], O_RDONLY);
    if (fd < 0)
        return fail("open");
    fexecve(fd, argv, environ);
    return fail("fexecve");
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "exe"))
        return show_exe();
    if (argc == 2 && !strcmp(argv[1], "reexec")) {
        char *again[] = {"probe", "exe", NULL};
        execv("/proc/self/exe", again);
        return fail("execv /proc/self/exe");
    }
    if (argc == 3 && !strcmp(argv[1], "cwd"))
        return show_cwd(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "ids")) {
        printf("%u %u %u %u\n", (unsigned)getuid(), (unsigned)geteuid(), (unsigned)getgid(),
               (unsigned)getegid());
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "forkexec"))
        return fork_exec(argv + 2);
    if (argc == 3 && !strcmp(argv[1], "threads"))
        return threads(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "raise")) {
        fflush(stdout);
        raise(atoi(argv[2]));
        return fail("raise returned");
    }
    if (argc == 3 && !strcmp(argv[1], "owners"))
        return owners(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "names"))
        return names();
    if (argc >= 3 && !strcmp(argv[1], "spawn"))
        return spawn(argv + 2);
    if (argc == 3 && !strcmp(argv[1], "fifo"))
        return fifo(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "unix"))
        return unix_socket(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "fexecve"))
        return fexecve_program(argv + 2);
    if (argc == 2 && !strcmp(argv[1], "traceme")) {
        long rc = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        printf("traceme %s\n", rc == 0 ? "0" : errno == EPERM ? "EPERM" : strerror(errno));
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "as")) {
        uid_t id = (uid_t)atoi(argv[2]);
        if (setgroups(0, NULL) != 0 || setgid((gid_t)id) != 0 || setuid(id) != 0)
            return fail("dropping to the user's ids");
        execv(argv[3], argv + 3);
        return fail("execv");
    }
    fprintf(stderr, "probe: usage: probe exe|reexec|cwd DIR|ids|forkexec PROG...|threads FILE|raise SIGNAL|owners PATH|names|spawn PROG...|fifo PATH|unix PATH|fexecve PROG...|traceme|as UID PROG...\n");
    return 2;
}

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
 *   probe as UID PROG..    drop every group, set the gid and uid to UID, execv(PROG, ...) (busybox's
 *                          setpriv cannot change ids; the VM's init runs the checks as a user so)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
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
    if (argc >= 4 && !strcmp(argv[1], "as")) {
        uid_t id = (uid_t)atoi(argv[2]);
        if (setgroups(0, NULL) != 0 || setgid((gid_t)id) != 0 || setuid(id) != 0)
            return fail("dropping to the user's ids");
        execv(argv[3], argv + 3);
        return fail("execv");
    }
    fprintf(stderr, "probe: usage: probe exe|reexec|cwd DIR|ids|forkexec PROG...|threads FILE|raise SIGNAL|as UID PROG...\n");
    return 2;
}

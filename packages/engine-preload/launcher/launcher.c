/* hpcbox-preload-exec CWD PROGRAM [ARGS...]: the first process of a preload container.
 *
 * A host program, started with LD_PRELOAD=libhpcbox-preload.so and the configuration in the
 * environment: its chdir and execvp go through the library, so CWD and PROGRAM are guest paths
 * and PROGRAM is found through the container's PATH and started with the container's loader.
 * Exit status when nothing could be started: 127 not found, 126 not executable, 125 otherwise
 * (a statically linked program: the library has printed why and what to use instead). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hpcbox-preload-exec CWD PROGRAM [ARGS...]\n");
        return 125;
    }
    if (chdir(argv[1]) < 0) {
        fprintf(stderr, "hpcbox: the working directory %s of the container: %s; create it in the "
                        "image or choose another with -w\n",
                argv[1], strerror(errno));
        return 125;
    }
    execvp(argv[2], argv + 2);
    if (errno == ENOENT || errno == ENOTDIR) {
        fprintf(stderr, "hpcbox: %s: not found in the container\n", argv[2]);
        return 127;
    }
    if (errno == ENOEXEC)
        return 125;
    fprintf(stderr, "hpcbox: %s: %s\n", argv[2], strerror(errno));
    return 126;
}

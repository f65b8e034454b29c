/*
 * MPI ping-pong between ranks 0 and 1 (other ranks only join MPI_Init/Finalize):
 *
 *     mpi_pingpong [MAX_BYTES [BATCHES]]      (defaults 4194304 and 10)
 *
 * For each message size from 8 bytes, doubling up to MAX_BYTES, rank 0 sends and rank 1 sends
 * back, BATCHES batches of ITERS round trips after a warm-up (ITERS from 1000 for small messages
 * down to 8 for 4 MiB). Rank 0 prints one line per size:
 *
 *     size BYTES latency_us L bandwidth_MBps B
 *
 * L is half a round trip, the median over the batches; B = BYTES / L. Every message is checked
 * (its first and last byte carry the round trip's number), so a transport that corrupts data fails.
 * First, rank 0 prints how the two ranks see each other:
 *
 *     peers userns same|different pid_visible yes|no
 *
 * (same user namespace: Open MPI may use single-copy transfers; pid visible: rank 1's pid, as rank 1
 * sees it, is a process rank 0 can see with that number). Exit status 0, else 1 after MPI_Abort.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fail(const char *what)
{
    fprintf(stderr, "mpi_pingpong: %s\n", what);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report_peers(int rank)
{
    struct stat st;
    long mine[2] = {stat("/proc/self/ns/user", &st) == 0 ? (long)st.st_ino : -1, (long)getpid()};
    long theirs[2] = {0, 0};
    if (rank == 0) {
        if (MPI_Recv(theirs, 2, MPI_LONG, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            fail("MPI_Recv of the peer's identity failed");
        char path[64];
        snprintf(path, sizeof(path), "/proc/%ld/ns/user", theirs[1]);
        struct stat peer;
        int visible = stat(path, &peer) == 0 && (long)peer.st_ino == theirs[0];
        printf("peers userns %s pid_visible %s\n", mine[0] == theirs[0] ? "same" : "different",
               visible ? "yes" : "no");
        fflush(stdout);
    } else if (rank == 1 && MPI_Send(mine, 2, MPI_LONG, 0, 1, MPI_COMM_WORLD) != MPI_SUCCESS) {
        fail("MPI_Send of this rank's identity failed");
    }
}

/* One batch of `iters` round trips of `bytes`; returns seconds per half round trip. */
static double batch(int rank, char *buf, int bytes, int iters, int *trip)
{
    double start = MPI_Wtime();
    for (int i = 0; i < iters; i++, (*trip)++) {
        char mark = (char)(*trip & 0x7f);
        if (rank == 0) {
            buf[0] = buf[bytes - 1] = mark;
            if (MPI_Send(buf, bytes, MPI_CHAR, 1, 0, MPI_COMM_WORLD) != MPI_SUCCESS ||
                MPI_Recv(buf, bytes, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                fail("send/receive failed");
        } else {
            if (MPI_Recv(buf, bytes, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS ||
                MPI_Send(buf, bytes, MPI_CHAR, 0, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
                fail("receive/send failed");
        }
        if (buf[0] != mark || buf[bytes - 1] != mark)
            fail("a message arrived corrupted");
    }
    return (MPI_Wtime() - start) / iters / 2;
}

int main(int argc, char **argv)
{
    int rank = -1, size = -1;
    long max_bytes = argc > 1 ? atol(argv[1]) : 4194304;
    int batches = argc > 2 ? atoi(argv[2]) : 10;
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "mpi_pingpong: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2 || max_bytes < 8 || max_bytes > (1L << 30) || batches < 1 || batches > 1000)
        fail("usage: mpirun -np 2 mpi_pingpong [MAX_BYTES (8..2^30) [BATCHES (1..1000)]]");
    char *buf = malloc((size_t)max_bytes);
    double *times = calloc((size_t)batches, sizeof(double));
    if (!buf || !times)
        fail("out of memory");
    memset(buf, 0, (size_t)max_bytes);
    report_peers(rank);
    int trip = 0;
    for (long bytes = 8; rank < 2 && bytes <= max_bytes; bytes *= 2) {
        long scaled = 32L * 1024 * 1024 / bytes;
        int iters = scaled > 1000 ? 1000 : scaled < 8 ? 8 : (int)scaled;
        batch(rank, buf, (int)bytes, iters / 4 + 1, &trip); /* warm-up */
        for (int b = 0; b < batches; b++)
            times[b] = batch(rank, buf, (int)bytes, iters, &trip);
        qsort(times, (size_t)batches, sizeof(double), compare);
        double half = times[batches / 2];
        if (rank == 0) {
            printf("size %ld latency_us %.3f bandwidth_MBps %.1f\n", bytes, half * 1e6, bytes / half / 1e6);
            fflush(stdout);
        }
    }
    free(times);
    free(buf);
    return MPI_Finalize() == MPI_SUCCESS ? 0 : 1;
}

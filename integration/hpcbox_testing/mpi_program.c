/*
 * The MPI test program: every rank contributes rank+1 to an MPI_Allreduce(SUM) and prints one line
 *
 *     rank R size N sum S host H
 *
 * so the test can check that all N ranks ran, agree on S = N(N+1)/2, and where they ran.
 * Exit status 0, or 1 after MPI_Abort when a call fails.
 */
#include <mpi.h>
#include <stdio.h>

static int check(int code, const char *what)
{
    if (code != MPI_SUCCESS) {
        fprintf(stderr, "mpi_program: %s failed (%d)\n", what, code);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rank = -1, size = -1, name_len = 0;
    long contribution, sum = 0;
    char host[MPI_MAX_PROCESSOR_NAME] = "";

    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "mpi_program: MPI_Init failed\n");
        return 1;
    }
    if (check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank") < 0 ||
        check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size") < 0 ||
        check(MPI_Get_processor_name(host, &name_len), "MPI_Get_processor_name") < 0)
        return 1;
    contribution = rank + 1;
    if (check(MPI_Allreduce(&contribution, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce") < 0)
        return 1;
    printf("rank %d size %d sum %ld host %s\n", rank, size, sum, host);
    fflush(stdout);
    return MPI_Finalize() == MPI_SUCCESS ? 0 : 1;
}

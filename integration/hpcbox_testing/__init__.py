"""Shared machinery of hpcbox's integration tests: real registries, a token server, test images, a proxy.

One concern per module:

- :mod:`.ports`       free loopback ports and waiting for a server to answer
- :mod:`.tls`         a throw-away CA, server certificates and the token signing certificate
- :mod:`.tokenserver` a Docker-Hub-like Bearer token server (RS256 JWTs with ``x5c``)
- :mod:`.registry`    Debian's ``docker-registry`` started in three configurations, and pushes with skopeo
- :mod:`.images`      OCI image layouts built with umoci/skopeo, cached between sessions
- :mod:`.proxy`       a loopback TCP proxy that cuts connections after N response bytes
- :mod:`.guestpath_model` the reference model of guest-path translation (ptrace and preload engines)
- :mod:`.slurm`       a single-node Slurm cluster on loopback, run as the test user
- :mod:`.mpi`         the Open MPI test image and its program (``mpi_program.c``), compiled inside it
- :mod:`.fakegpu`     a fake NVIDIA driver tree for the GPU tests on machines without a GPU
- :mod:`.importgraph` a package's import graph from its sources, for the layering tests of the CLI and
                      the registry (their sdists carry a copy as ``tests/importgraph.py``)

The pytest fixtures that wrap these live in ``integration/conftest.py``.
"""

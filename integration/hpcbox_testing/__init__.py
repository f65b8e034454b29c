"""Shared machinery of hpcbox's integration tests: real registries, a token server, test images, a proxy.

One concern per module:

- :mod:`.ports`       free loopback ports and waiting for a server to answer
- :mod:`.tls`         a throw-away CA, server certificates and the token signing certificate
- :mod:`.tokenserver` a Docker-Hub-like Bearer token server (RS256 JWTs with ``x5c``)
- :mod:`.registry`    Debian's ``docker-registry`` started in three configurations, and pushes with skopeo
- :mod:`.images`      OCI image layouts built with umoci/skopeo, cached between sessions
- :mod:`.proxy`       a loopback TCP proxy that cuts connections after N response bytes

The pytest fixtures that wrap these live in ``integration/conftest.py``.
"""

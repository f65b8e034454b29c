"""chroot(2) inside the container (debootstrap, pbuilder, mock and build tools use it), under runc
(the reference: the container's root has CAP_SYS_CHROOT in its user namespace) and the engines that
emulate it. Each test builds a second small root inside the container (bash and a few coreutils
with their libraries and loader, found with ldd) and runs the same script under every engine, with
the same expected output.
"""

from __future__ import annotations

import pytest
import test_run_common as common
from test_cli_common import ok

run_store = common.run_store  # fixtures

CHROOT_ENGINES = common.RUN_ENGINES

MAKE_SUB_ROOT = r"""
set -e
rm -rf /srv/sub; mkdir -p /srv/sub/etc /srv/sub/tmp /srv/sub/usr/bin /srv/sub/usr/lib /srv/sub/usr/lib64
for d in bin lib lib64; do if [ -L /$d ]; then ln -s usr/$d /srv/sub/$d; fi; done
for prog in bash cat ls readlink head /usr/bin/pwd; do
  src=$(command -v $prog); cp "$src" /srv/sub/usr/bin/
  for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
    mkdir -p "/srv/sub$(dirname "$lib")"
    [ -e "/srv/sub$lib" ] || cp "$(readlink -f "$lib")" "/srv/sub$lib"
  done
done
echo sub > /srv/sub/etc/marker; echo outer > /etc/marker
ln -s /etc/marker /srv/sub/marker-link
set +e
"""


@pytest.fixture(params=CHROOT_ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def container(run_store):
    """A Debian 12 container of this test's own (the tests write into it)."""
    return run_store.create("debian")


def _run(run_store, engine: str, container: str, script: str):
    return run_store("run", *common.engine_args(run_store, engine), container, "bash", "-c",
                     MAKE_SUB_ROOT + script)


def test_chroot_command_resolves_in_the_new_root(run_store, container, engine):
    script = r"""
        /usr/sbin/chroot /srv/sub /bin/bash -c 'cat /etc/marker; ls /; cd /..; pwd; cat /marker-link
                                                 readlink /marker-link; cd /usr; /bin/pwd; ls /srv 2>&1'
        echo "rc=$?"
        cat /etc/marker
    """
    proc = ok(_run(run_store, engine, container, script))
    assert proc.stdout.splitlines() == [
        "sub",
        "bin", "etc", "lib", "lib64", "marker-link", "tmp", "usr",  # the sub root's own entries
        "/",        # ".." stays at the new root
        "sub",      # an absolute symlink resolves from the new root
        "/etc/marker",
        "/usr",
        "ls: cannot access '/srv': No such file or directory",  # the outer root is out of reach
        "rc=2",
        "outer",    # the caller's own root is unchanged
    ], proc.stderr


def test_chroot_dot_keeps_the_cwd_and_children_inherit_the_root(run_store, container, engine):
    # perl's chroot(2) without chdir: `chroot .`, then a child process (system) in the new root
    script = r"""
        cd /srv/sub && perl -e 'chroot(".") or die "chroot: $!\n"; open(F, "/etc/marker") or die "open: $!\n";
                                print <F>; system("/usr/bin/cat", "/etc/marker") == 0 or die "system: $?\n";
                                system("/usr/bin/pwd")'
    """
    proc = ok(_run(run_store, engine, container, script))
    assert proc.stdout.splitlines() == ["sub", "sub", "/"], proc.stderr


def test_chroot_errors_as_linux(run_store, container, engine):
    script = r"""
        su nobody -s /bin/sh -c '/usr/sbin/chroot /srv/sub /bin/true'; echo "nobody: $?"
        /usr/sbin/chroot /srv/absent /bin/true; echo "absent: $?"
        /usr/sbin/chroot /etc/marker /bin/true; echo "file: $?"
    """
    proc = _run(run_store, engine, container, script)
    assert proc.stdout.splitlines() == ["nobody: 125", "absent: 125", "file: 125"], proc.stderr
    errors = [line.partition(": cannot change root directory to ")[2] for line in proc.stderr.splitlines()
              if "cannot change root directory" in line]
    assert errors == ["'/srv/sub': Operation not permitted", "'/srv/absent': No such file or directory",
                      "'/etc/marker': Not a directory"], proc.stderr

"""The container store: ``<home>/containers/<id>/`` holding ``rootfs/``, ``container.json``, ``config.json``.

    from hpcbox.containers import ContainerStore
    cs = ContainerStore(store)             # store: hpcbox.store.layout.Store
    c = cs.create("busybox", name="box")   # the image must be in the store (the CLI pulls it first)
    cs.get("box").rootfs                   # Path .../containers/<id>/rootfs

The front of the package: the store class is in :mod:`.store` (its rules in that module's header),
errors in :mod:`.errors`, filesystem helpers in :mod:`.fs`, overlay containers in :mod:`.overlay`.
"""

from hpcbox import lazy

TYPE_CHECKING = False  # the names are loaded when first used (hpcbox.lazy): `hpcbox run` needs few
if TYPE_CHECKING:
    from hpcbox.containers.errors import (
        AmbiguousContainerError,
        ContainerError,
        ContainerExistsError,
        ContainerInUseError,
        DamagedContainerError,
        ProtectedError,
        UnknownContainerError,
    )
    from hpcbox.containers.fs import copy_rootfs, copy_tree, mapped_runner, remove_tree
    from hpcbox.containers.store import (
        CREATE_PREFIX,
        META,
        REMOVE_PREFIX,
        Container,
        ContainerStore,
        Damaged,
        check_name,
    )

_WHERE = {
    "AmbiguousContainerError": "errors",
    "ContainerError": "errors",
    "ContainerExistsError": "errors",
    "ContainerInUseError": "errors",
    "DamagedContainerError": "errors",
    "ProtectedError": "errors",
    "UnknownContainerError": "errors",
    "copy_rootfs": "fs",
    "copy_tree": "fs",
    "mapped_runner": "fs",
    "remove_tree": "fs",
    "CREATE_PREFIX": "store",
    "META": "store",
    "REMOVE_PREFIX": "store",
    "Container": "store",
    "ContainerStore": "store",
    "Damaged": "store",
    "check_name": "store",
}


__getattr__ = lazy.names(__name__, _WHERE)

__all__ = [
    "CREATE_PREFIX",
    "META",
    "REMOVE_PREFIX",
    "AmbiguousContainerError",
    "Container",
    "ContainerError",
    "ContainerExistsError",
    "ContainerInUseError",
    "ContainerStore",
    "Damaged",
    "DamagedContainerError",
    "ProtectedError",
    "UnknownContainerError",
    "check_name",
    "copy_rootfs",
    "copy_tree",
    "mapped_runner",
    "remove_tree",
]

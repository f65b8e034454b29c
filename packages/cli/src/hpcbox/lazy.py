"""Packages whose names load on first use (PEP 562), so that importing one of their light modules does
not import their heavy ones: `hpcbox run` needs ``hpcbox.store.lock`` but not the store's classes."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict


def names(package: str, where: Dict[str, str]) -> Callable[[str], object]:
    """The ``__getattr__`` of *package*: each name of *where* (name -> module of the package) is
    imported from its module when first asked for, and kept in the package."""

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(__import__(f"{package}.{module}", fromlist=[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__

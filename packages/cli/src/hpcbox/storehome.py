"""Where the store is, as a plain string: :func:`hpcbox.settings.home` without pathlib.

A leaf module (it imports only :mod:`os`) shared by the lean start-up path (:mod:`hpcbox.quick`) and
``hpcbox run`` (:mod:`hpcbox.commands.run`), so that neither imports the other to find the store.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs milliseconds of every `hpcbox run`: checkers only
if TYPE_CHECKING:
    from typing import Optional, Protocol

    class HasHome(Protocol):
        """The one attribute read: argparse's Namespace and hpcbox.quick's stand-in both have it."""

        @property
        def home(self) -> Optional[str]: ...


def store_home(args: HasHome) -> Optional[str]:
    """``settings.home(args)`` as a string, or None when only pathlib can say how it spells it."""
    given = args.home or os.environ.get("HPCBOX_HOME") or os.environ.get("UDOCKER_DIR")
    if given:
        path = os.path.expanduser(given)
        if not path.startswith("/"):
            path = os.path.join(os.getcwd(), path)
    else:
        path = os.path.join(os.path.expanduser("~"), ".hpcbox")
    # pathlib drops '.', '//' and a trailing '/' but keeps '..': leave such spellings to it
    return path if os.path.normpath(path) == path and not path.startswith("//") else None

"""hpcbox install: udocker downloads its engines with this command; hpcbox's come with it."""

from __future__ import annotations

import sys
from argparse import Namespace


def run(args: Namespace) -> int:
    sys.stderr.write("hpcbox: note: nothing to install: hpcbox's engines are installed with it; "
                     "'hpcbox info' shows which work here\n")
    return 0

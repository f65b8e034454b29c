"""``python -m hpcbox``."""

import sys

from hpcbox.quick import main

sys.exit(main())

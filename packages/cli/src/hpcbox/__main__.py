"""``python -m hpcbox``."""

import sys

from hpcbox.main import main

sys.exit(main())

import sys
from pathlib import Path

# The helpers beside the tests (layers_testkit) are imported by name; the name is unique in the repo.
sys.path.insert(0, str(Path(__file__).parent))

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# Hypothesis times each example (200 ms) and the data generation: on a loaded CI machine either may
# take ten times longer than here, which fails a test for no fault of the code. Not timed, then.
settings.register_profile("hpcbox-untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hpcbox-untimed")

# The helpers beside the tests (layers_testkit) are imported by name; the name is unique in the repo.
sys.path.insert(0, str(Path(__file__).parent))

"""The tests' services come from Tests/harness/locksmith_harness.py (shared with the fleet simulator)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness"))
from locksmith_harness import *  # noqa: F401,F403,E402
from locksmith_harness import _running  # noqa: F401,E402

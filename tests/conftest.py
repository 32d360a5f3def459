import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# The test in progress, for `make test` to name if the process dies in native code (a signal
# leaves Python no chance to report); faulthandler prints the Python stack as well.
CURRENT_TEST_FILE = os.environ.get("HDLGEN_CURRENT_TEST_FILE")


def pytest_runtest_logstart(nodeid, location):
    if CURRENT_TEST_FILE:
        Path(CURRENT_TEST_FILE).write_text(nodeid + "\n")

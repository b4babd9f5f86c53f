"""Kill an h5vc operation at every write it makes to the store, and check the store each time.

The sweeps themselves live in tests/fault/sweep.py (the test suite runs them too); see its
docstring.

    python bench/crash_sweep.py [--scenario transaction|checkout|commit|journal] [--jobs 2]
                                [--every K] [--keep DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fault.sweep import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

"""``python -m canopy``: the ``canopy`` command."""

import sys

from canopy.cli import main

sys.exit(main())

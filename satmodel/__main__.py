"""``python -m satmodel``: the same as the ``satmodel`` command."""

import sys

from satmodel.cli import main

sys.exit(main())

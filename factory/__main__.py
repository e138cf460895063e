"""``python -m factory`` = the ``factory`` console script."""

import sys

from factory.cli import main

sys.exit(main())

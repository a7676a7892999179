"""``python -m hwaware_plugins.cli``."""

import sys

from hwaware_plugins.cli import main

sys.exit(main())

"""``python -m transferkit.cli`` (and ``torchrun ... -m transferkit.cli``) is the ``transferkit`` command."""

import sys

from transferkit.cli import main

sys.exit(main())

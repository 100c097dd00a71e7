"""`python -m transferkit` is the `transferkit` command."""

import sys

from transferkit.cli import command

sys.exit(command())

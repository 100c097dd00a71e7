"""What the command modules share: the sub-command builder and JSON on stdout."""

from __future__ import annotations

import argparse

__all__ = ["add_command", "print_json"]


def add_command(sub, name: str, help: str, example: str, **kw) -> argparse.ArgumentParser:
    """A sub-command whose help shows ``help`` and an example."""
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kw,
    )


def print_json(obj) -> None:
    """One JSON document on stdout, nothing else there."""
    from transferkit.report import to_json

    print(to_json(obj))

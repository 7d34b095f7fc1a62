"""The ``throttlekit`` command line.

Run ``throttlekit --help`` for the commands; ``throttlekit demo`` compares a
retry-on-429 client with throttlekit against a local rate-limited API.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import __version__, _demo

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``throttlekit`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="throttlekit",
        description="Share third-party API rate limits without hitting them.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _demo.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Args:
        argv: The arguments after the program name. ``None`` (default):
            ``sys.argv[1:]``.

    Returns:
        0 on success; without a command, prints the help and returns 0.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    code: int = handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

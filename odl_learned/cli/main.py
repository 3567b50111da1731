"""The ``odl-learned`` command line.

Each subcommand lives in its own module with ``add_parser(subparsers)``; this
module only assembles them and turns bad input into a one-line error with exit
code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import sys

from odl_learned import __version__
from odl_learned.cli import benchmark, demo, reconstruct, train

__all__ = ("build_parser", "main")

SUBCOMMANDS = (demo, benchmark, train, reconstruct)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``odl-learned``.

    Examples
    --------
    >>> parser = build_parser()
    >>> parser.parse_args(["benchmark", "ct", "--quick"]).quick
    True
    """
    parser = argparse.ArgumentParser(
        prog="odl-learned",
        description="Classical and learned reconstruction for inverse problems (CT, MRI) in one ODL algebra.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``odl-learned`` with ``argv``; return the exit code.

    Bad input (``ValueError``, ``TypeError``, a missing file) prints
    ``odl-learned: error: ...`` and returns 2.

    Examples
    --------
    >>> main(["benchmark", "ct", "--noise", "-1"])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

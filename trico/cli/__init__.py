"""The single `trico` entry point.

Each command group lives in its own module under `trico/cli/` and exposes
`register(subparsers)`, which adds its sub-command(s) and sets `func` on the parser.
Sub-commands call library functions only; this package is the one place that knows
every part of trico.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from trico import __version__
from trico.errors import TricoError

# Command-group modules, in the order they appear in `trico --help`.
COMMAND_MODULES: list[str] = [
    "trico.cli.generate",
    "trico.cli.evaluate",
    "trico.cli.demo",
    "trico.cli.quantize",
    "trico.cli.plan",
    "trico.cli.hlsbugs",
    "trico.cli.hls",
    "trico.cli.bench",
]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="trico",
        description=(
            "trico co-optimizes LLM inference: compress a model, run it fast, predict its cost on "
            "any hardware, and compile it toward an accelerator."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trico {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TricoError as exc:
        print(f"trico: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trico: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``python -m ops``: the operator's command line (see ``--help``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ops import routings
from shared.settings import SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops", description="Operate the Cognigy → CXone router (reads REDIS_URL etc.).")
    commands = parser.add_subparsers(dest="command", required=True)
    routings.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return args.handler(args, settings, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())

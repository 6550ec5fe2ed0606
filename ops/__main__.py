"""``python -m ops``: the operator's command line (see ``--help``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ops import doctor, routings
from shared.settings import SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per operator task, each with its handler in ``handler``."""
    parser = argparse.ArgumentParser(
        prog="python -m ops", description="Operate the Cognigy → CXone router (reads REDIS_URL etc.)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    routings.add_commands(commands)
    doctor.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (``python -m ops`` or the ``router-ops`` console script); returns its exit
    status: 0 ok, 1 the command found a problem, 2 the settings are invalid."""
    args = build_parser().parse_args(argv)
    if getattr(args, "without_settings", False):
        return args.handler(args, None, sys.stdout)  # reports bad settings itself (doctor)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return args.handler(args, settings, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())

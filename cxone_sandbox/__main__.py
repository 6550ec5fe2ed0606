"""`python -m cxone_sandbox`: serve the sandbox until ctrl-C or SIGTERM.

`python -m cxone_sandbox contact ID [--status …] [--assignee N] [--skill-id N]` shows or changes a
contact of a running sandbox instead, and `python -m cxone_sandbox skill-activity SKILL
[--agents-available N] [--queue-count N] [--longest-wait S]` a skill's live state (see
:mod:`cxone_sandbox.control`).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from .config import parse_command_line
from .control import contact_command, skill_activity_command
from .server import make_sandbox_server


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM (docker stop) into the KeyboardInterrupt werkzeug's serve_forever handles."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags and environment, then serve in the foreground; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["contact"]:
        return contact_command(arguments[1:], os.environ, sys.stdout)
    if arguments[:1] == ["skill-activity"]:
        return skill_activity_command(arguments[1:], os.environ, sys.stdout)
    options, config = parse_command_line(arguments, os.environ)
    server = make_sandbox_server(options.host, options.port, config, verbose=options.verbose)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    advertised = config.public_url or "the request's Host"
    print(
        f"cxone-sandbox listening on http://{options.host}:{server.port} "
        f"(advertising {advertised}; controls at /sandbox)",
        file=sys.stderr,
        flush=True,
    )
    try:
        # werkzeug's serve_forever swallows KeyboardInterrupt and closes the socket itself.
        server.serve_forever()
    finally:
        server.server_close()
    print("cxone-sandbox stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""In-memory stand-in for the NICE CXone API (auth, discovery, skills, DFO routing, Signal).

Run it with `python -m cxone_sandbox`, or in tests with `create_app()` / `serve_in_thread()`.
"""

from .app import create_app, sandbox_state
from .config import SandboxConfig
from .seed import SEED_SKILLS, SeedSkill
from .server import SandboxServer, serve_in_thread

__all__ = [
    "SEED_SKILLS",
    "SandboxConfig",
    "SandboxServer",
    "SeedSkill",
    "create_app",
    "sandbox_state",
    "serve_in_thread",
]

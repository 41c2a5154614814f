"""What every command gets: the resolved global options, a client and the output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fnbox.cli.parser import UsageError
from fnbox.cli.render import Output, OutputMode
from fnbox.client import FnboxClient

__all__ = ["TOKEN_FILE", "CliSettings", "Context"]

TOKEN_FILE = "admin.token"


@dataclass(frozen=True, slots=True)
class CliSettings:
    """The global options after the environment and defaults were applied (by ``main``)."""

    target: str
    token: str | None
    data_dir: Path
    output: OutputMode

    def require_token(self) -> str:
        """The token from --token, FNBOX_TOKEN, or DIR/admin.token, else a UsageError."""
        if self.token:
            return self.token
        path = self.data_dir / TOKEN_FILE
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise UsageError(
                f"no API token: pass --token, set FNBOX_TOKEN, or start a server with "
                f"'fnbox serve' (it writes {path})"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"the token file {path} is empty")
        return token


@dataclass(frozen=True, slots=True)
class Context:
    """A command's connection and output."""

    settings: CliSettings
    client: FnboxClient
    out: Output

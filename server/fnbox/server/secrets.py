"""Encryption of sensitive values at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from fnbox.server.errors import FnboxError
from fnbox.server.settings import AuthSettings

KEY_FILE = "secret.key"


class SecretBox:
    """Encrypts and decrypts small values with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, value: bytes) -> str:
        return self._fernet.encrypt(value).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken as exc:
            # A value encrypted under another key: the operator changed secret_key.
            raise FnboxError(
                "a stored secret cannot be decrypted", reason="SECRET_KEY_MISMATCH"
            ) from exc


def load_secret_box(auth: AuthSettings, data_dir: Path) -> SecretBox:
    """The box for ``auth.secret_key``, else for ``<data_dir>/secret.key``, generated on first
    use with mode 0600 (never overwritten)."""
    if auth.secret_key is not None:
        return SecretBox(auth.secret_key.get_secret_value().encode("ascii"))
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return SecretBox(path.read_bytes().strip())
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as file:
        file.write(key + b"\n")
    return SecretBox(key)

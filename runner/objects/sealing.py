"""Secrets sealed at rest: a Secret's data is kept in the database encrypted (Fernet: AES-128-CBC and
HMAC-SHA256, from the `cryptography` library) with a key that is not in the database.

The key is TASKHUB_SECRETS_KEY when set (what workers on other machines are given), else the file
`<data_dir>/secrets.key`, made on first use, readable by its owner only. A copy of the database (a backup, a
dump, a read-only replica) then holds no secret in the clear; whoever has the database *and* the key has them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from catalog.errors import TaskhubError

KEY_FILE = "secrets.key"


class SealingError(TaskhubError):
    """Sealed data that this key cannot open (another hub's key, or damaged data), or a key that is malformed."""


class Sealer:
    """Seals and opens a Secret's data (key -> bytes)."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            message = "the secrets key must be 32 bytes in URL-safe base64 (as `Fernet.generate_key()` makes)"
            raise SealingError(message) from None
        self._key = base64.urlsafe_b64decode(key)

    def derived_key(self, purpose: bytes) -> bytes:
        """A 256-bit key of its own for `purpose`, derived from this one (HMAC-SHA256), for data that another
        cipher seals (triggers.spool): one secret to give every process, never the same key for two ciphers."""
        return hmac.new(self._key, purpose, hashlib.sha256).digest()

    def seal(self, data: dict[str, bytes]) -> bytes:
        text = json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(data.items())})
        return self._fernet.encrypt(text.encode())

    def open(self, sealed: bytes) -> dict[str, bytes]:
        try:
            text = self._fernet.decrypt(sealed)
        except InvalidToken:
            raise SealingError(
                "a Secret sealed with another key cannot be read: give this hub the key it was sealed with "
                "(TASKHUB_SECRETS_KEY, or <data_dir>/secrets.key)"
            ) from None
        return {k: base64.b64decode(v) for k, v in json.loads(text).items()}


def sealer_for(data_dir: Path, key: str = "") -> Sealer:
    """The sealer of a hub: the key given (TASKHUB_SECRETS_KEY), else the data directory's key file, made once."""
    if key:
        return Sealer(key.strip().encode())
    path = Path(data_dir) / KEY_FILE
    try:
        return Sealer(path.read_bytes().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private file, then linked into place: a hub starting beside this one reads either no key
    # file or the whole key, and when two make one at once, both use the one that was linked first.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return Sealer(path.read_bytes().strip())

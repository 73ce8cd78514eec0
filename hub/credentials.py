"""Registry credentials, kept out of the database in a file only the hub's user can read."""

from __future__ import annotations

import json
import os
from pathlib import Path

from catalog.errors import TaskhubError


class CredentialStore:
    """Username and password per registry host, in a JSON file with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data: dict[str, dict[str, str]] = json.loads(self.path.read_text())
            return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise TaskhubError(f"cannot read registry credentials from {self.path}: {exc}") from None

    def get(self, host: str) -> tuple[str, str] | None:
        entry = self._load().get(host)
        return (entry["username"], entry["password"]) if entry else None

    def set(self, host: str, username: str, password: str) -> None:
        data = self._load()
        data[host] = {"username": username, "password": password}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(temporary, self.path)

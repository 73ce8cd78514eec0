"""Registry credentials in the hub's database, sealed with the key and code that seal Secrets
(runner.objects.sealing): a login made through any hub or command is used by every hub and worker of the database,
whatever its data dir, and a dump of the database holds no password in the clear. No command or API shows them.

Hubs before this kept them in `<data_dir>/registry-credentials.json`. The first use of the store on such a data dir
imports that file (the hosts the database has no login for yet) and renames it `registry-credentials.json.imported`,
which is never read again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.errors import TaskhubError
from catalog.models import utcnow
from hub.models import RegistryCredential
from runner.objects.sealing import Sealer, SealingError, sealer_for

LEGACY_FILE = "registry-credentials.json"


class CredentialStore:
    """Username and password per registry host, in `engine`'s database (none without one: a database that has no
    schema yet has no logins); sealed with `secrets_key`, else `<data_dir>/secrets.key`."""

    def __init__(self, engine: Engine | None, data_dir: Path, secrets_key: str = "") -> None:
        self.engine, self.data_dir, self.secrets_key = engine, Path(data_dir), secrets_key

    @functools.cached_property
    def _sealer(self) -> Sealer:
        return sealer_for(self.data_dir, self.secrets_key)

    def get(self, host: str) -> tuple[str, str] | None:
        if self.engine is None:
            return None
        self._import_file(self.engine)
        with Session(self.engine) as session:
            sealed = session.scalar(select(RegistryCredential.sealed).where(RegistryCredential.host == host))
        if sealed is None:
            return None
        try:
            opened = self._sealer.open(sealed)
        except SealingError:
            raise SealingError(
                f"the registry credentials of {host} were sealed with another key: give this process the key they "
                "were sealed with (TASKHUB_SECRETS_KEY, or <data_dir>/secrets.key), or store them again with "
                "`taskhub registry add --username`"
            ) from None
        return opened["username"].decode(), opened["password"].decode()

    def set(self, host: str, username: str, password: str) -> None:
        if self.engine is None:
            raise TaskhubError("registry credentials are kept in the database: run `taskhub db upgrade` first")
        self._import_file(self.engine)
        with Session(self.engine) as session, session.begin():
            session.merge(RegistryCredential(host=host, sealed=self._seal(username, password), updated_at=utcnow()))

    def delete(self, host: str) -> bool:
        """Forgets host's login; whether there was one."""
        if self.engine is None:
            return False
        self._import_file(self.engine)
        with Session(self.engine) as session, session.begin():
            row = session.get(RegistryCredential, host)
            if row is not None:
                session.delete(row)
            return row is not None

    def _seal(self, username: str, password: str) -> bytes:
        return self._sealer.seal({"username": username.encode(), "password": password.encode()})

    def _import_file(self, engine: Engine) -> None:
        """The data dir's old credentials file into the database, once; the database's own logins win."""
        path = self.data_dir / LEGACY_FILE
        try:
            stored = json.loads(path.read_text())
            logins = {host: (entry["username"], entry["password"]) for host, entry in stored.items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TaskhubError(f"cannot import the registry credentials of {path}: {exc!r}") from None
        with contextlib.suppress(IntegrityError), Session(engine) as session, session.begin():  # another process did
            known = set(session.scalars(select(RegistryCredential.host)))
            session.add_all(
                RegistryCredential(host=host, sealed=self._seal(*login)) for host, login in logins.items()
                if host not in known
            )  # fmt: skip
        with contextlib.suppress(FileNotFoundError):  # another process renamed it
            os.replace(path, path.with_name(f"{LEGACY_FILE}.imported"))

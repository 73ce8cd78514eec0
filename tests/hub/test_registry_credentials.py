"""Registry logins kept in the hub's database, sealed with the secrets key (a worker with another data dir using
one: tests/test_cli_worker.py): a hub with another key answers 503 naming the setting, and a data dir's old
credentials file is imported once."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import TaskhubError
from hub.app import create_app
from hub.config import Settings
from hub.models import RegistryCredential
from hub.registries import credential_store


def test_a_hub_with_another_key_answers_503_naming_the_setting(settings, engine):
    credential_store(settings, engine).set("127.0.0.1:9", "alice", "s3cret")  # sealed with data/secrets.key
    other = Settings(
        data_dir=settings.data_dir.parent / "other",
        database_url=settings.database_url,
        secrets_key=Fernet.generate_key().decode(),
        resolve_registries="127.0.0.1:9",
    )
    client = create_app(other).test_client()
    answer = client.get("/v1/resolve?resolver=bundles&bundle=127.0.0.1:9/x:1&name=x&kind=task")
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert "sealed with another key" in answer.json["message"] and "TASKHUB_SECRETS_KEY" in answer.json["message"]
    assert "s3cret" not in answer.get_data(as_text=True)


def test_a_data_dirs_old_credentials_file_is_imported_once(settings, engine, tmp_path):
    key = Fernet.generate_key().decode()
    hub = Settings(data_dir=tmp_path / "hub", database_url=settings.database_url, secrets_key=key)
    worker = Settings(data_dir=tmp_path / "worker", database_url=settings.database_url, secrets_key=key)
    credential_store(worker, engine).set("kept.example", "new", "login")  # made since, on another pod
    old = hub.data_dir / "registry-credentials.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"old.example": {"username": "u", "password": "p"},
                               "kept.example": {"username": "x", "password": "y"}}))  # fmt: skip

    assert credential_store(hub, engine).get("old.example") == ("u", "p")
    assert not old.exists() and (hub.data_dir / "registry-credentials.json.imported").exists()
    assert credential_store(worker, engine).get("old.example") == ("u", "p")
    assert credential_store(worker, engine).get("kept.example") == ("new", "login")  # the database's login wins
    sealed = b"".join(Session(engine).scalars(select(RegistryCredential.sealed)))
    assert b"login" not in sealed and b'"p"' not in sealed


def test_a_damaged_old_credentials_file_is_named_and_kept(settings, engine):
    old = settings.data_dir / "registry-credentials.json"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_text("{not json")
    with pytest.raises(TaskhubError, match=r"cannot import the registry credentials of .*registry-credentials\.json"):
        credential_store(settings, engine).get("old.example")
    assert old.read_text() == "{not json"

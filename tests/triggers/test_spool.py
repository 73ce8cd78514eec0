"""The sink's spool (triggers/spool.py), on SQLite and PostgreSQL: an event answered 202 is in the spool, sealed, and
a mover records it once with its job, whatever crashed in between; what cannot be recorded is kept, never lost."""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from catalog.models import utcnow
from hub.app import create_app
from hub.config import Settings
from hub.services import Services
from jobs.models import Job
from tests.triggers.support import github_signature
from triggers.events import Incoming
from triggers.models import LISTENER, QUEUED, TriggerEvent
from triggers.spool import SUFFIX, SpoolBusy, Spooled, SpoolKeyError, SpoolMover, SpoolWriter

LISTENER_YAML = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: el1, namespace: ns1}
spec:
  triggers:
  - name: t
    template:
      spec:
        resourcetemplates:
        - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: cm-}}
"""
BODY = b'{"after": "0123abcd", "ref": "refs/heads/main"}'


@pytest.fixture
def hub(settings, tmp_path):
    """A hub that spools to tmp_path/spool, with EventListener ns1/el1; and a mover to call."""
    spooled = dataclasses.replace(settings, triggers_spool=str(tmp_path / "spool"))
    app = create_app(spooled)
    from catalog.manifests import load_documents
    from hub.objects import ObjectService

    ObjectService(app.extensions["taskhub.objects"]).apply(load_documents(LISTENER_YAML), namespace="ns1")
    yield app
    app.extensions["taskhub.triggers"].spool.close()


def mover(app, **kwargs) -> SpoolMover:
    service = app.extensions["taskhub.triggers"]
    return SpoolMover(service.spool.directory, service.spool_cipher(), service.record_spooled, **kwargs)


def post(app, delivery: str | None = None, body: bytes = BODY) -> str:
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
               "X-Hub-Signature-256": github_signature("s3cr3t", body)}  # fmt: skip
    if delivery:
        headers["X-GitHub-Delivery"] = delivery
    answer = app.test_client().post("/v1/listeners/ns1/el1", data=body, headers=headers)
    assert answer.status_code == 202, answer.data
    return answer.get_json()["eventID"]


def recorded(app) -> list[TriggerEvent]:
    return app.extensions["taskhub.triggers"].events.recent(limit=100)[0][::-1]


def jobs(app) -> int:
    with app.extensions["taskhub.engine"].connect() as conn:
        return conn.scalar(select(func.count()).select_from(Job))


def spool_files(app) -> list[Path]:
    return sorted(app.extensions["taskhub.triggers"].spool.directory.glob("*" + SUFFIX))


def test_an_accepted_event_is_spooled_sealed_then_recorded_with_its_job_once(hub):
    event_ids = [post(hub, "d-1"), post(hub, "d-2")]
    (spool,) = spool_files(hub)
    kept = spool.read_bytes()
    assert BODY in kept and github_signature("s3cr3t", BODY).encode() not in kept  # the signature is sealed
    assert recorded(hub) == []  # answered before it is recorded

    taking = mover(hub)
    assert taking.move() == 2
    rows = recorded(hub)
    assert [r.event_id for r in rows] == event_ids and {r.status for r in rows} == {QUEUED}
    assert rows[0].body == BODY and ["X-Hub-Signature-256", "[redacted]"] in rows[0].headers
    assert jobs(hub) == 2
    # The job that processes it opens the full headers, signature included, as if it had been recorded directly.
    _, headers = hub.extensions["taskhub.triggers"].events.start(event_ids[0])
    assert ("X-Hub-Signature-256", github_signature("s3cr3t", BODY)) in headers
    assert taking.move() == 0 and spool_files(hub) == [spool]  # its writer still writes there
    taking.close()


def test_a_mover_started_again_reads_the_spool_again_and_records_nothing_twice(hub):
    for n in range(3):
        post(hub, f"again-{n}")
    first = mover(hub)
    assert first.move() == 3
    first.close()  # as a mover killed before it could remove anything
    second = mover(hub)
    assert second.move() == 0
    second.close()
    assert len(recorded(hub)) == 3 and jobs(hub) == 3


def test_one_mover_at_a_time(hub):
    first = mover(hub)
    with pytest.raises(SpoolBusy, match="another process is moving the spool"):
        mover(hub)
    first.close()
    mover(hub).close()


def test_a_redelivery_in_the_spool_is_recorded_as_a_duplicate_and_queues_nothing(hub):
    first, again = post(hub, "same"), post(hub, "same")
    taking = mover(hub)
    assert taking.move() == 2
    taking.close()
    rows = {r.event_id: r for r in recorded(hub)}
    assert rows[again].status == "duplicate" and rows[again].duplicate_of == rows[first].id
    assert jobs(hub) == 1


def test_finished_files_are_removed_once_recorded(hub):
    service = hub.extensions["taskhub.triggers"]
    service.spool = SpoolWriter(service.spool.directory, service.spool_cipher(), rotate_bytes=1)  # a file each
    for n in range(3):
        post(hub, f"rotate-{n}")
    assert len(spool_files(hub)) == 3
    taking = mover(hub)
    assert taking.move() == 3
    assert len(spool_files(hub)) == 1  # the one its writer holds
    service.spool.close()  # the writer ends, as its process would
    assert taking.move() == 0 and spool_files(hub) == []
    taking.close()


def test_an_event_cut_short_by_a_crash_is_dropped_and_the_ones_before_it_recorded(hub, caplog):
    post(hub, "whole-1")
    post(hub, "whole-2")
    (spool,) = spool_files(hub)
    whole = spool.stat().st_size
    with spool.open("ab") as out:  # what a process killed in the middle of its write(2) leaves
        out.write(spool.read_bytes()[: whole // 3])
    hub.extensions["taskhub.triggers"].spool.close()
    taking = mover(hub)
    with caplog.at_level(logging.WARNING, logger="triggers.spool"):
        assert taking.move() == 2
    taking.close()
    assert "cut short by a crash" in caplog.text and taking.dropped_bytes == whole // 3
    assert spool_files(hub) == [] and len(recorded(hub)) == 2


def test_a_damaged_spool_is_kept_for_a_person_and_what_precedes_the_damage_recorded(hub, caplog):
    post(hub, "before")
    post(hub, "damaged")
    (spool,) = spool_files(hub)
    data = bytearray(spool.read_bytes())
    data[-5] ^= 0xFF  # a byte of the second event's body
    spool.write_bytes(bytes(data))
    hub.extensions["taskhub.triggers"].spool.close()
    taking = mover(hub)
    with caplog.at_level(logging.ERROR, logger="triggers.spool"):
        assert taking.move() == 1
    taking.close()
    assert "checksum does not match" in caplog.text
    assert spool_files(hub) == [] and spool.with_name(spool.name + ".damaged").exists()
    assert [r.delivery_id for r in recorded(hub)] == ["before"]


def test_events_stay_in_the_spool_while_the_database_is_away(hub, caplog):
    post(hub, "waits")
    service = hub.extensions["taskhub.triggers"]
    failures = []

    def record(events: list[Spooled]) -> int:
        if not failures:
            failures.append(1)
            raise OperationalError("INSERT", {}, Exception("the database is away"))
        return service.record_spooled(events)

    taking = SpoolMover(service.spool.directory, service.spool_cipher(), record)
    with caplog.at_level(logging.WARNING, logger="triggers.spool"):
        taking.follow()
    assert "the database is away" in caplog.text and recorded(hub) == []
    taking.follow()
    taking.close()
    assert [r.delivery_id for r in recorded(hub)] == ["waits"]


def test_a_sink_whose_spool_cannot_be_written_records_the_event_itself(settings, tmp_path, caplog):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    app = create_app(dataclasses.replace(settings, triggers_spool=str(blocked / "spool")))
    from catalog.manifests import load_documents
    from hub.objects import ObjectService

    ObjectService(app.extensions["taskhub.objects"]).apply(load_documents(LISTENER_YAML), namespace="ns1")
    with caplog.at_level(logging.WARNING, logger="hub.triggers_service"):
        event_id = post(app, "direct")
    assert "cannot be written" in caplog.text and "events are recorded directly" in caplog.text
    (row,) = recorded(app)
    assert row.event_id == event_id and row.status == QUEUED and jobs(app) == 1


def test_a_mover_with_another_secrets_key_records_nothing_and_keeps_the_spool_as_it_is(hub, settings, tmp_path, caplog):
    post(hub, "other-key")
    hub.extensions["taskhub.triggers"].spool.close()
    (spool,) = spool_files(hub)
    other = Services(dataclasses.replace(settings, data_dir=tmp_path / "other"), hub.extensions["taskhub.engine"])
    triggers = other.triggers
    taking = SpoolMover(tmp_path / "spool", triggers.spool_cipher(), triggers.record_spooled)
    with pytest.raises(SpoolKeyError, match="sealed with another secrets key"):
        taking.move()
    with caplog.at_level(logging.ERROR, logger="triggers.spool"):
        taking.follow()  # logged, and tried again later
    taking.close()
    assert "sealed with another secrets key" in caplog.text
    assert spool_files(hub) == [spool] and recorded(hub) == []
    assert mover(hub).move() == 1  # the hub's own key records it


def test_a_redelivery_recorded_hours_after_it_came_is_still_a_duplicate(hub, monkeypatch):
    first, again = post(hub, "late"), post(hub, "late")
    later = utcnow() + timedelta(hours=2)  # the hub was down; the spool is moved two hours on
    monkeypatch.setattr("triggers.events.utcnow", lambda: later)
    taking = mover(hub)
    assert taking.move() == 2
    taking.close()
    rows = {r.event_id: r for r in recorded(hub)}
    assert rows[again].status == "duplicate" and rows[again].duplicate_of == rows[first].id and jobs(hub) == 1


def test_what_was_recorded_is_made_durable_before_its_file_goes(hub):
    post(hub, "durable")
    hub.extensions["taskhub.triggers"].spool.close()
    (spool,) = spool_files(hub)
    seen = []
    service = hub.extensions["taskhub.triggers"]

    def durable() -> None:
        seen.append((spool.exists(), len(recorded(hub))))
        service.make_durable()

    taking = SpoolMover(spool.parent, service.spool_cipher(), service.record_spooled, durable=durable)
    assert taking.move() == 1
    taking.close()
    assert seen == [(True, 1)] and not spool.exists()


def test_a_forked_child_does_not_keep_its_parents_spool_file_open(hub):
    post(hub, "fork")
    (spool,) = spool_files(hub)
    go, wait = os.pipe()
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # the child (past the fork's hooks) says so, and holds on until told
        os.write(ready_w, b"!")
        os.read(go, 1)
        os._exit(0)
    os.read(ready_r, 1)
    try:
        hub.extensions["taskhub.triggers"].spool.close()  # the parent is done with the file; the child lives on
        taking = mover(hub)
        assert taking.move() == 1 and not spool.exists()
        taking.close()
    finally:
        os.write(wait, b"!")
        os.waitpid(child, 0)
        for fd in (go, wait, ready_r, ready_w):
            os.close(fd)


def test_a_frame_written_by_hand_is_decoded_as_the_sink_encoded_it(hub):
    service = hub.extensions["taskhub.triggers"]
    headers = [("Content-Type", "application/json"), ("X-Gitlab-Token", "t0ken")]
    incoming = Incoming(LISTENER, "ns1", "el1", "PUT", "/p?q=1", headers, b"\x00\xff not JSON", 12)
    event_id = str(uuid.uuid4())
    values = service.events.accepted_values(incoming, event_id, uid="u-1", status=202)
    cipher = service.spool_cipher()
    again = cipher.decode(cipher.encode(Spooled(values, headers)))
    assert again.values == values and again.headers == headers
    assert os.fsencode("t0ken") not in cipher.encode(Spooled(values, headers))


def test_serve_spools_when_its_database_is_a_file_on_this_host_unless_told_otherwise(tmp_path):
    on_sqlite = Settings(data_dir=tmp_path)
    assert on_sqlite.serve_spool() == tmp_path.resolve() / "spool"
    assert on_sqlite.spool_directory() is None  # a hub built outside serve has no mover: it records events itself
    postgres = "postgresql+psycopg://taskhub@db/taskhub"
    assert Settings(data_dir=tmp_path, database_url=postgres).serve_spool() is None
    assert Settings(data_dir=tmp_path, database_url="sqlite://").serve_spool() is None  # in memory
    assert Settings(data_dir=tmp_path, triggers_spool="off").serve_spool() is None
    told = Settings(data_dir=tmp_path, database_url=postgres, triggers_spool=str(tmp_path / "disk"))
    assert told.serve_spool() == told.spool_directory() == tmp_path / "disk"


def test_the_sink_sees_a_changed_or_deleted_listener_within_the_check_interval(settings):
    from catalog.manifests import load_documents
    from hub.objects import ObjectService
    from tests.jobs.processes import wait_until

    app = create_app(dataclasses.replace(settings, generation_check_interval=0.5))
    objects = ObjectService(app.extensions["taskhub.objects"])
    objects.apply(load_documents(LISTENER_YAML), namespace="ns1")
    client, url = app.test_client(), "/v1/listeners/ns1/el1"
    assert client.post(url, data=b"[1]").status_code == 400  # not a JSON object
    unvalidated = LISTENER_YAML.replace("namespace: ns1}", "namespace: ns1, annotations: "
                                        "{tekton.dev/payload-validation: 'false'}}")  # fmt: skip
    objects.apply(load_documents(unvalidated), namespace="ns1")
    wait_until(lambda: client.post(url, data=b"[1]").status_code == 202, "the sink to see the listener changed")
    app.extensions["taskhub.objects"].delete("EventListener", "ns1", "el1")
    wait_until(lambda: client.post(url, data=b"{}").status_code == 404, "the sink to see the listener gone")

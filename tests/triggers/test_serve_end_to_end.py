"""A webhook to a run, through the processes an operator starts: `taskhub apply` and `taskhub secret create` for the
listener and its Secret, `taskhub serve` (granian and its embedded job worker) for the sink, and the local backend
for the run. A signed GitHub push becomes a TaskRun that succeeds and logs the pushed revision; a push signed with
another secret is recorded stopped and runs nothing."""

from __future__ import annotations

from typing import Any

import requests

from catalog.db import make_engine
from runner.records import RunRecords
from tests.jobs.processes import wait_until
from tests.test_cli import run, serving  # noqa: F401 (run: the fixture)
from tests.triggers.support import PUSH, github_signature
from triggers.events import EventLog

LISTENER = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: push-listener}
spec:
  triggers:
  - name: build-on-push
    interceptors:
    - ref: {name: github}
      params:
      - {name: secretRef, value: {secretName: webhook-secret, secretKey: token}}
      - {name: eventTypes, value: [push]}
    bindings:
    - {name: revision, value: $(body.after)}
    - {name: url, value: $(body.repository.clone_url)}
    template:
      spec:
        params: [{name: revision}, {name: url}]
        resourcetemplates:
        - apiVersion: tekton.dev/v1
          kind: TaskRun
          metadata: {generateName: build-}
          spec:
            params: [{name: revision, value: $(tt.params.revision)}]
            taskSpec:
              params: [{name: revision}]
              steps:
              - name: build
                image: alpine
                script: echo "building $(params.revision) of $(tt.params.url)"
"""


def test_a_signed_push_to_taskhub_serve_becomes_a_run_that_succeeds_on_the_local_backend(run):  # noqa: F811
    run("db", "upgrade")
    run("apply", "-f", "-", "-n", "ci", stdin=LISTENER)
    run("secret", "create", "webhook-secret", "--from-literal", "token=s3cr3t", "-n", "ci")
    run.env["TASKHUB_JOB_POLL_SECONDS"] = "0.1"
    engine = make_engine(run.env["TASKHUB_DATABASE_URL"])
    events = EventLog(engine, None, dedupe_seconds=3600)  # type: ignore[arg-type]  # reads, needs no sealer
    records = RunRecords(engine)

    def processed(event_id: str) -> dict[str, Any]:
        def done() -> Any:
            row = events.get(event_id)
            return row if row is not None and row.status not in ("queued", "processing") else None

        row = wait_until(done, f"event {event_id} to be processed")
        return {"status": row.status, "outcomes": row.outcomes}

    try:
        with serving(run, "--workers", "1") as (base, _, _, _):
            url = f"{base}/v1/listeners/ci/push-listener"
            headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
            answer = requests.post(url, data=PUSH, headers={**headers, "X-Hub-Signature-256":
                                   github_signature("s3cr3t", PUSH)}, timeout=30)  # fmt: skip
            assert answer.status_code == 202
            (outcome,) = processed(answer.json()["eventID"])["outcomes"]
            (created,) = outcome["created"]
            assert (outcome["status"], created["kind"]) == ("created", "TaskRun"), outcome
            run_id = created["run"]
            wait_until(lambda: records.get(run_id).status not in ("Pending", "Running"), f"run {run_id} to end")
            detail = records.get(run_id)
            assert (detail.status, detail.backend, detail.namespace) == ("Succeeded", "local", "ci"), detail.message
            assert detail.created_by == "el:ci/push-listener"
            logs = run("runs", "logs", str(run_id)).stdout
            assert "building bffeb74224043ba2feb48d137756c8a9331c449a of https://github.com/example/widgets.git" in logs

            forged = requests.post(url, data=PUSH, headers={**headers, "X-Hub-Signature-256":
                                   github_signature("guessed", PUSH)}, timeout=30)  # fmt: skip
            assert forged.status_code == 202
            (stopped,) = processed(forged.json()["eventID"])["outcomes"]
            assert stopped["status"] == "stopped" and stopped["reason"].endswith("payload signature check failed")
            assert records.recent(limit=5)[1] == 1  # still the one run
    finally:
        engine.dispose()

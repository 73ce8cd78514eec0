"""The kinds of jobs taskhub queues, as the queue needs to know them (see jobs.queue.JobKind)."""

from __future__ import annotations

from jobs.queue import JobKind

# Syncs are safe to repeat and coalesce: a second request while one is queued joins it.
CATALOG_SYNC = JobKind("catalog-sync", idempotent=True, coalesce=True)
REGISTRY_SYNC = JobKind("registry-sync", idempotent=True, coalesce=True)
# Publishing pushes content-addressed bundles: repeating it pushes nothing twice.
PUBLISH = JobKind("publish", idempotent=True)
# A run's steps may have effects outside taskhub: a run whose worker stopped answering is abandoned, never re-run.
RUN = JobKind("run", idempotent=False, max_attempts=1)

# What an accepted webhook event does: it may create runs, so one that stopped half way is not done again.
TRIGGER_EVENT = JobKind("trigger-event", idempotent=False, max_attempts=1)
# The same for an EventListener read from a cluster (`taskhub triggers serve`): only that process, which reaches
# the cluster, takes them; the hub's workers have no handler for them.
CLUSTER_TRIGGER_EVENT = JobKind("cluster-trigger-event", idempotent=False, max_attempts=1)

KINDS = {kind.name: kind for kind in (CATALOG_SYNC, REGISTRY_SYNC, PUBLISH, RUN, TRIGGER_EVENT, CLUSTER_TRIGGER_EVENT)}

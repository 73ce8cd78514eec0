"""taskhub as a cluster's resolver: watch the ResolutionRequests labelled `resolution.tekton.dev/type: taskhub` and
answer each one the way a Tekton resolver does (tektoncd/pipeline: docs/how-to-write-a-resolver.md,
pkg/apis/resolution/v1beta1/), so that a PipelineRun can say `resolver: taskhub`.

The params decide which of taskhub's two resolvers answers: a request with a `bundle` param is a bundles request
(`bundle`, `name`, `kind`, `cache`), any other a hub request (`name`, `version` (a constraint), `kind`, `catalog`,
`type`). Success is one merge patch of the status subresource: `data` (base64 of the bytes), `annotations`,
`refSource` and its deprecated copy `source`, and `Succeeded=True` (Tekton's core controller would set that
itself once `data` is there; writing it too makes the request complete where none runs). Failure is
`Succeeded=False`, reason `ResolutionFailed`, with the message Tekton's framework writes. Each patch carries the
resourceVersion the request was read at, so a request is answered once even if two resolvers race.

The list is followed by a watch that resumes where it stopped, lists again after 410 Gone, and reconnects with a
bounded backoff when the API server goes away. What resolves is behind ReferenceResolver; this module only speaks
Kubernetes.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client

from runner.cluster_resolver.answers import Answer, ReferenceResolver, answer_request, is_pending
from runner.kube import Cluster, ClusterError, shut_socket, watch_events

GROUP, VERSION, PLURAL = "resolution.tekton.dev", "v1beta1", "resolutionrequests"
TYPE_LABEL = "resolution.tekton.dev/type"
RESOLVER_TYPE = "taskhub"
# Below runner.kube's 30 s read timeout: an idle watch is ended by the server and resumed, never timed out.
WATCH_SECONDS = 25
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
CONFLICT_ATTEMPTS = 3
REMEMBERED = 10_000  # answered requests (by uid) never looked at again
# API server answers that mean "not now": retried with backoff, like a dropped connection.
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


class ApiServerUnavailable(ClusterError):
    """The API server cannot be reached or answered 5xx/429 for now; the watcher retries with backoff."""


@dataclass
class Counts:
    """What the watcher did: requests answered (resolved or failed) and status writes made."""

    resolved: int = 0
    failed: int = 0
    writes: int = 0
    skipped: int = 0  # answered by someone else between our read and our write


class ResolutionRequestWatcher:
    """Answers the pending ResolutionRequests of one namespace (or all: namespace None) until stopped."""

    def __init__(
        self,
        api: client.ApiClient,
        resolver: ReferenceResolver,
        namespace: str | None,
        *,
        resolver_type: str = RESOLVER_TYPE,
        on_answer: Callable[[Answer], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        workers: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cluster = Cluster(api, namespace or "")
        self.objects = client.CustomObjectsApi(api)
        self.resolver, self.namespace, self.clock = resolver, namespace, clock
        self.selector = f"{TYPE_LABEL}={resolver_type}"
        self.on_answer, self.on_retry = on_answer, on_retry
        self.where = f"{namespace} namespace" if namespace else "all namespaces"
        self.counts = Counts()
        self._workers = workers
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # uids being answered
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._response: Any = None  # the watch being read, so stop() can end the read
        self._gone = False  # the last watch ended with 410 Gone: list again
        self._fatal: ClusterError | None = None

    # -- running ------------------------------------------------------------------------------------------

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """List, answer and watch until stop(); raises ClusterError when the cluster refuses us for good.

        A first list that fails is an error (a wrong kubeconfig should not look like a quiet resolver); later
        outages are retried with a backoff up to BACKOFF_MAX seconds. `ready` is called after the first list.
        """
        self.check_access()
        with ThreadPoolExecutor(self._workers, thread_name_prefix="resolve") as pool:
            version: str | None = self._list(pool)
            if ready is not None:
                ready()
            delay = BACKOFF_FIRST
            while not self._stop.is_set():
                try:
                    if version is None:
                        version = self._list(pool)
                    for obj in self._watch(version):
                        version = str(obj["metadata"]["resourceVersion"])
                        self._consider(pool, obj)
                    version = None if self._gone else version
                    delay = BACKOFF_FIRST
                except ApiServerUnavailable as exc:
                    if self._stop.is_set():
                        break
                    if self.on_retry:
                        self.on_retry(f"{exc}; retrying in {delay:g} s")
                    # List again once back: an answer that could not be written then has no new event to bring
                    # its request back.
                    version = None
                    self._stop.wait(delay)
                    delay = min(delay * 2, BACKOFF_MAX)
        if self._fatal is not None:
            raise self._fatal

    def stop(self) -> None:
        """End run(): the current watch read is interrupted, requests being answered are finished."""
        self._stop.set()
        response = self._response
        if response is not None:
            shut_socket(response)

    def check_access(self) -> None:
        """Fail early, with what to grant, when the account may not patch resolutionrequests/status."""
        review = {"spec": {"resourceAttributes": {
            "group": GROUP, "resource": PLURAL, "subresource": "status", "verb": "patch",
            "namespace": self.namespace or "",
        }}}  # fmt: skip
        answer: Any = self._call(
            "check access to resolutionrequests/status",
            client.AuthorizationV1Api(self.cluster.api).create_self_subject_access_review,
            review,
            _preload_content=False,
        )
        if not json.loads(answer.data).get("status", {}).get("allowed"):
            raise ClusterError(
                f"not allowed to patch resolutionrequests/status in {self.where}: the resolver's account needs "
                f"get, list, watch on {PLURAL}.{GROUP} and patch on {PLURAL}/status"
            )

    # -- list and watch -----------------------------------------------------------------------------------

    def _list_fn(self) -> tuple[Callable[..., Any], tuple[str, ...]]:
        if self.namespace:
            return self.objects.list_namespaced_custom_object, (GROUP, VERSION, self.namespace, PLURAL)
        return self.objects.list_cluster_custom_object, (GROUP, VERSION, PLURAL)

    def _list(self, pool: ThreadPoolExecutor) -> str:
        fn, args = self._list_fn()
        listing: Any = self._call(
            f"list {PLURAL} in {self.where}", fn, *args, label_selector=self.selector, _preload_content=False
        )
        body = json.loads(listing.data)
        for item in body.get("items") or []:
            self._consider(pool, item)
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> Iterator[dict[str, Any]]:
        """Objects added or changed after `version`; sets _gone when the server has compacted that far."""
        self._gone = False
        fn, args = self._list_fn()
        response: Any = self._call(
            f"watch {PLURAL} in {self.where}", fn, *args, label_selector=self.selector, watch=True,
            resource_version=version, timeout_seconds=WATCH_SECONDS, allow_watch_bookmarks=True,
            _preload_content=False,
        )  # fmt: skip
        self._response = response
        try:
            if self._stop.is_set():
                return
            for kind, obj in watch_events(response):
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        self._gone = True
                        return
                    raise ApiServerUnavailable(f"watching {PLURAL} in {self.where} failed: {obj.get('message')}")
                if kind == "BOOKMARK":
                    continue  # only its resourceVersion matters; the caller records it
                yield obj
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if not self._stop.is_set():
                raise ApiServerUnavailable(f"lost the watch on {self.cluster.server}: {exc}") from None
        finally:
            self._response = None
            if self._stop.is_set() or self._gone:
                response.close()  # not read to its end: its connection cannot be reused
            response.release_conn()

    # -- answering ----------------------------------------------------------------------------------------

    def _consider(self, pool: ThreadPoolExecutor, obj: dict[str, Any]) -> None:
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if not is_pending(obj) or self._stop.is_set():
            return
        with self._lock:
            if uid in self._busy or uid in self._answered:
                return
            self._busy.add(uid)
        pool.submit(self._answer, obj, uid)

    def _answer(self, obj: dict[str, Any], uid: str) -> None:
        try:
            answer = answer_request(self.resolver, obj)
            if self._write(obj, answer):
                with self._lock:
                    if answer.succeeded:
                        self.counts.resolved += 1
                    else:
                        self.counts.failed += 1
                if self.on_answer:
                    self.on_answer(answer)
        except ApiServerUnavailable as exc:
            if self.on_retry:  # the request stays pending; the next list or watch event brings it back
                self.on_retry(str(exc))
        except ClusterError as exc:
            self._fatal = exc
            self.stop()
        finally:
            with self._lock:
                self._busy.discard(uid)

    def _write(self, obj: dict[str, Any], answer: Answer) -> bool:
        """Merge the answer into the status at the version read; False if someone else answered first."""
        meta = obj["metadata"]
        namespace, name, uid = str(meta["namespace"]), str(meta["name"]), str(meta.get("uid") or "")
        version = str(meta["resourceVersion"])
        what = f"patch ResolutionRequest {name} status in {namespace} namespace"
        for _ in range(CONFLICT_ATTEMPTS):
            body = {"metadata": {"resourceVersion": version}, "status": answer.status(self.clock())}
            try:
                self._call(what, self.objects.patch_namespaced_custom_object_status,
                           GROUP, VERSION, namespace, PLURAL, name, body, one=True)  # fmt: skip
            except _Conflict:
                current = self._get(namespace, name)
                if current is None or not is_pending(current):
                    with self._lock:
                        self.counts.skipped += 1
                    break
                version = str(current["metadata"]["resourceVersion"])
                continue
            except _Gone:
                break
            with self._lock:
                self.counts.writes += 1
                self._answered[uid] = None
                while len(self._answered) > REMEMBERED:
                    self._answered.popitem(last=False)
            return True
        return False

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: Any = self._call(f"get ResolutionRequest {name} in {namespace} namespace",
                                    self.objects.get_namespaced_custom_object,
                                    GROUP, VERSION, namespace, PLURAL, name, one=True)  # fmt: skip
        except _Gone:
            return None
        return dict(found)

    # -- plumbing -----------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, one: bool = False, **kwargs: Any) -> Any:
        """One API call with runner.kube's error wording; outages, conflicts and a missing request (`one`: the
        call is about one request) become this module's types."""
        try:
            return self.cluster.call(what, fn, *args, **kwargs)
        except ClusterError as exc:
            if exc.status is None:
                raise ApiServerUnavailable(str(exc)) from None
            if exc.status == 409:
                raise _Conflict(str(exc)) from None
            if exc.status == 404 and one:
                raise _Gone(str(exc)) from None
            if exc.status == 404:
                raise ClusterError(
                    f"the cluster at {self.cluster.server} does not serve {PLURAL}.{GROUP}/{VERSION}: "
                    "is Tekton Pipelines (v0.46 or later) installed?"
                ) from None
            if exc.status in TRANSIENT_STATUSES:
                raise ApiServerUnavailable(str(exc)) from None
            raise


class _Conflict(ClusterError):
    """409: the request changed since it was read."""


class _Gone(ClusterError):
    """404 on one request: it was deleted."""

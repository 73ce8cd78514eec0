"""taskhub's settings: typed defaults in code, overridden once at start-up by TASKHUB_* variables."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "TASKHUB_"
RUN_BACKENDS = ("local", "kubernetes")
LOCAL_CONTAINERS = ("auto", "podman", "host")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    # Empty means a SQLite file in data_dir.
    database_url: str = ""
    # The hub's own address in links (install commands, rawURL of local catalogs); empty: from each request.
    public_url: str = ""
    # How long clients and proxies may reuse a GET response of the APIs.
    cache_max_age: int = 60
    # How often a worker checks whether the index changed (seconds); bounds how stale a cached answer gets.
    generation_check_interval: float = 0.5
    # Memory for whole API answers kept per worker (bytes); the least recently used go first.
    response_cache_bytes: int = 32 * 1024 * 1024
    log_level: str = "INFO"
    # "text": lines for a person; "json": one JSON object per line (taskhub's messages, server and access logs).
    log_format: str = "text"
    # How long a stopping server gives requests in flight, and a stopping worker its running jobs, to end
    # (seconds); the manifests' terminationGracePeriodSeconds leave room above it.
    shutdown_grace_seconds: float = 30.0
    # Registry hosts (host:port, comma-separated) reached over plain HTTP; loopback hosts always are.
    insecure_registries: str = ""
    # Registry hosts (comma-separated) that resolve requests may reach; empty: the registries added to this hub
    # (`taskhub registry add`); "*": any at a public address (loopback, private and link-local ones only when named
    # here or added). Others are refused before any connection is made.
    resolve_registries: str = ""
    # Hosts (host[:port], or *.domain for any name under it; comma-separated) a registry may redirect blob
    # downloads and uploads to, besides itself; such a host must be at a public address unless the registry is not.
    registry_redirect_hosts: str = (
        "*.githubusercontent.com,*.docker.com,*.docker.io,*.amazonaws.com,*.cloudfront.net,"
        "storage.googleapis.com,*.blob.core.windows.net,*.quay.io,*.pkg.dev"
    )
    # Where the publish API (POST /v1/catalog/{name}/publish) may push, besides under the registries added to the
    # hub (`taskhub registry add`): host[:port] or host[:port]/prefix, comma-separated. The command line may push
    # anywhere its user can.
    publish_registries: str = ""
    # How long a tag's digest is trusted before the registry is asked again (seconds).
    resolve_tag_ttl: float = 60.0
    # How long a resolve may wait for a registry before it fails, retries included (seconds).
    resolve_timeout: float = 2.0
    # Memory for resolved answers, per worker (bytes); their blobs are also kept on disk in data_dir/blobs.
    resolve_cache_bytes: int = 64 * 1024 * 1024
    # Disk for the blob cache in data_dir/blobs (bytes); the least recently used blobs go first.
    blob_cache_bytes: int = 1024 * 1024 * 1024
    # The catalog of hub resolve requests that name none.
    default_catalog: str = "tekton"
    # Every endpoint, web pages included, needs an API token with the "read" scope.
    private: bool = False
    # How long a worker trusts a verified token before asking the database again: the most a revocation lags.
    token_cache_seconds: float = 30.0
    # Requests per client (token name, else address) and worker process, as "N/second|minute|hour"; 0: no limit.
    rate_limit_resolve: str = "600/minute"
    # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto are
    # believed: the client's address (for rate limits) and scheme come from them. Empty: nobody's.
    trusted_proxies: str = "127.0.0.0/8,::1"
    rate_limit_search: str = "300/minute"
    # Origins whose browser scripts may read the Tekton Hub API (comma-separated; "*": any, as Tekton Hub allows;
    # empty: none).
    cors_origins: str = "*"
    # The categories /v1/categories lists (comma-separated); empty: Tekton Hub's 20.
    categories: str = ""
    # The catalog that Artifact Hub's default repository names (tekton-catalog-tasks, tekton-catalog-pipelines)
    # stand for when no catalog has those names; empty turns the aliases off.
    artifact_hub_default_catalog: str = "tekton"
    # Where runs started through the API (POST /v1/runs) run: "local" (steps as sandboxed processes of the hub's
    # host, runner/local/sandbox.py; work directories in data_dir/local-runs) or "kubernetes" (PipelineRuns on the
    # cluster of `kubeconfig`). Either way a runs:write token lets its holder run any command there.
    run_backend: str = "local"
    # The backends the API runs on, comma-separated; "auto": kubernetes, and local only while the hub listens on a
    # loopback address (listen_host), as runs:write then runs commands on this host.
    api_run_backends: str = "auto"
    # The address the hub listens on; `taskhub serve --host` sets it for its workers.
    listen_host: str = "127.0.0.1"
    # Run records (params, results, logs) readable by anyone who may read the hub; false: only with a token holding
    # the runs:read (or runs:write) scope.
    public_runs: bool = False
    # The namespace of API runs: on Kubernetes where they are created (empty: the kubeconfig context's); locally
    # the namespace of installed objects (`taskhub hub install --local`; empty: default).
    run_namespace: str = ""
    # The kubeconfig of the kubernetes run backend (empty: $KUBECONFIG, else ~/.kube/config).
    kubeconfig: str = ""
    # The key that seals Secrets in the database (URL-safe base64 of 32 bytes, as `Fernet.generate_key()` makes);
    # empty: the file data_dir/secrets.key, made on first use. Every hub and worker sharing a database needs the same.
    secrets_key: str = ""
    # The largest body an EventListener's sink takes (bytes); larger ones are answered 413 and recorded.
    triggers_max_body_bytes: int = 10 * 1024 * 1024
    # How long a provider's delivery id (X-GitHub-Delivery, ...) is remembered: a delivery sent again within it is
    # recorded as a duplicate and not processed (seconds).
    triggers_dedupe_seconds: float = 3600.0
    # Networks (comma-separated CIDRs) custom interceptors and legacy webhooks may be reached in, besides public
    # addresses; loopback, link-local and private addresses are refused unless listed.
    triggers_interceptor_networks: str = ""
    # How long a call to a custom interceptor may take, connection included (seconds).
    triggers_interceptor_timeout: float = 10.0
    # Where sinks keep accepted events until `taskhub events ingest --follow` records them (triggers/spool.py):
    # "auto": `taskhub serve` spools to data_dir/spool, and runs that mover, when the database is a SQLite file
    # (a file on this host, as durable as the spool); "off": events are recorded in the request; a directory: the
    # spool there (on PostgreSQL too: then it needs a disk that outlives the pod, as the database's does).
    triggers_spool: str = "auto"
    # How many jobs (syncs, publishes, runs, events) a worker does at once (`taskhub worker --concurrency`, and the
    # worker `taskhub serve` embeds); the others wait queued.
    worker_concurrency: int = 4
    # How long a job stays a worker's without the worker renewing it (seconds): how soon the job of a killed worker
    # is taken back by another (a sync done again, a run recorded abandoned). Workers renew every third of it.
    job_lease_seconds: float = 30.0
    # The longest a queued job waits for an idle worker that was not woken (seconds; PostgreSQL wakes workers at
    # once with NOTIFY, and SQLite those of the same process).
    job_poll_seconds: float = 1.0
    # How the local backend runs a pod's containers: "auto" (in their images with podman where podman can start a
    # container here, else as sandboxed host processes), "podman" (runs stop with the reason where it cannot) or
    # "host" (sandboxed host processes, images unused).
    local_containers: str = "auto"
    # Images container mode runs instead of those steps name, for registries out of reach: comma-separated
    # NAME=IMAGE, NAME an image's last path component without tag or digest (alpine=127.0.0.1:5000/mirror/busybox).
    image_map: str = ""

    def __post_init__(self) -> None:
        if self.run_backend not in RUN_BACKENDS:
            raise ValueError(
                f"setting TASKHUB_RUN_BACKEND={self.run_backend!r}: expected one of {', '.join(RUN_BACKENDS)}"
            )
        unknown = set(self.accepted_backends()) - set(RUN_BACKENDS)
        if unknown or not self.api_run_backends.strip():
            raise ValueError(
                f"setting TASKHUB_API_RUN_BACKENDS={self.api_run_backends!r}: expected auto or a comma-separated "
                f"list of {', '.join(RUN_BACKENDS)}"
            )
        if self.local_containers not in LOCAL_CONTAINERS:
            raise ValueError(
                f"setting TASKHUB_LOCAL_CONTAINERS={self.local_containers!r}: expected one of "
                f"{', '.join(LOCAL_CONTAINERS)}"
            )
        if not self.database_url:
            url = f"sqlite:///{(Path(self.data_dir) / 'taskhub.db').resolve()}"
            object.__setattr__(self, "database_url", url)

    def accepted_backends(self) -> tuple[str, ...]:
        """The backends API runs may go to (see api_run_backends)."""
        if self.api_run_backends.strip() == "auto":
            return RUN_BACKENDS if is_loopback_host(self.listen_host) else ("kubernetes",)
        return tuple(b.strip() for b in self.api_run_backends.split(",") if b.strip())

    @property
    def category_names(self) -> tuple[str, ...]:
        """The configured categories, Tekton Hub's list by default."""
        from catalog.metadata import HUB_CATEGORIES

        names = tuple(dict.fromkeys(c.strip() for c in self.categories.split(",") if c.strip()))
        return names or HUB_CATEGORIES

    def spool_directory(self) -> Path | None:
        """The sinks' spool, when a process that serves them has one (`taskhub serve` resolves "auto")."""
        if self.triggers_spool in ("auto", "off", ""):
            return None
        return Path(self.triggers_spool)

    def serve_spool(self) -> Path | None:
        """The spool `taskhub serve` gives its web workers and mover, "auto" resolved."""
        if self.triggers_spool != "auto":
            return self.spool_directory()
        from catalog.db import sqlite_file

        return Path(self.data_dir).resolve() / "spool" if sqlite_file(self.database_url) else None

    @property
    def hub_url(self) -> str:
        """The hub's own address when no request names it (the command line, workers): public_url, else where
        `taskhub serve` listens by default."""
        return self.public_url or "http://127.0.0.1:8000/"

    @property
    def catalogs_dir(self) -> Path:
        """Where git catalogs are cloned."""
        return Path(self.data_dir) / "catalogs"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from keys like ``database_url`` or ``TASKHUB_DATABASE_URL``; unknown keys are refused."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            name = key.removeprefix(PREFIX).lower()
            if name not in fields:
                raise ValueError(f"unknown setting {key}")
            kwargs[name] = _convert(fields[name].type, value, key)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls.from_mapping(
            {k: v for k, v in environ.items() if k.startswith(PREFIX) and k[len(PREFIX) :].lower() in fields}
        )


def is_loopback_host(host: str) -> bool:
    """Whether a listen host (a name or an address) is this machine only; 0.0.0.0 and :: are every interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name (or 0.0.0.0, ::) that others may reach


def _convert(type_name: object, value: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    if type_name == "bool":
        flag = value.strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(f"setting {key}={value!r} is not a boolean (true/false, 1/0)")
        return flag in ("true", "1", "yes", "on")
    try:
        if type_name == "int":
            return int(value)
        if type_name == "float":
            return float(value)
    except ValueError:
        raise ValueError(f"setting {key}={value!r} is not a {type_name}") from None
    if type_name == "Path":
        return Path(value)
    return value

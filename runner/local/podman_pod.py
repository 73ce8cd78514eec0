"""Container mode of the local executor: each step and sidecar of a TaskRun's pod runs in its own image with podman
(runner/podman.py finds how podman starts containers here).

A container gets what a pod's container gets on a cluster: its image's root, ENTRYPOINT/CMD (replaced by
`command`, followed by `args`, as Kubernetes does), its own `env`/`envFrom` and `workingDir`, the user and groups
its securityContext and the pod's give (runner/local/podsecurity.py), and the pod's volumes bind-mounted at their
Tekton paths: /tekton (read-only but for results, home and the step's own /tekton/run/<i>), /workspace, workspaces
and volumeMounts. A `script` is written to /tekton/scripts and run as the command, so its shebang (or `#!/bin/sh`,
which Tekton adds where there is none) is the image's own (tektoncd/pipeline: pkg/pod/script.go).
/tekton/steps/<i> and /tekton/steps/step-<name> are links to /tekton/run/<i>/status, as Tekton's entrypoint makes
them.

Steps run one `podman run` each (its cost is the floor bench/runs.py measures against). A pod with sidecars
gets a network holder first, a container of the host's `sleep` over an empty root (no image to pull), whose
network namespace the steps and sidecars join: they reach each other on localhost, and probes reach them at the
pod's address, as the kubelet's do.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import secrets
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from catalog.references import is_loopback
from runner.local.errors import RunFailure
from runner.local.hostpaths import Mount, PathMap
from runner.local.imagedigests import repository_digest, served_digest, untagged
from runner.local.images import mapped_image
from runner.local.podsecurity import user_options
from runner.local.stepenv import declared_environment
from runner.local.steps import container_working_dir, write_script
from runner.local.workspaces import Lookup
from runner.podman import Podman, PodmanFailed, host_program_options, host_rootfs

TR_IMAGE_PULL_FAILED = "TaskRunImagePullFailed"
TR_POD_CREATION_FAILED = "PodCreationFailed"
KILL_RETRY = 0.2  # seconds between `podman kill`s while `podman run` has not made its container yet
POD_LABEL = "taskhub.dev/pod"
RUN_LABEL = "taskhub.dev/run"  # one run of the executor: what its reaper removes

Credentials = Callable[[str], tuple[str, str] | None]


class ImageUnavailable(Exception):
    """An image could not be pulled; the message is podman's."""


@dataclass
class ContainerMode:
    """How a local run's containers are made: `podman`, the image map (TASKHUB_IMAGE_MAP, runner.local.images),
    the registry credentials of a host, and the registries spoken to over plain http (loopback ones always)."""

    podman: Podman
    image_map: dict[str, str] = field(default_factory=dict)
    credentials: Credentials = lambda host: None
    insecure: frozenset[str] = frozenset()
    _ready: set[str] = field(default_factory=set, init=False, repr=False)  # images this mode need not pull again
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _inspected: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _pulled: set[str] = field(default_factory=set, init=False, repr=False)  # images this run pulled
    _ids: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def for_run(self) -> ContainerMode:
        """This mode with nothing pulled or looked up yet: each run pulls an `Always` image again, as each pod does."""
        return dataclasses.replace(self)

    def image_for(self, image: str, pull_policy: str | None) -> str:
        """The image to run for a step's `image`: mapped, fully qualified, and pulled as `pull_policy` (Always,
        IfNotPresent, Never; Kubernetes' default when None) says, at most once per run (for_run)."""
        name = qualified(mapped_image(image, self.image_map))
        policy = pull_policy or ("Always" if _latest(name) else "IfNotPresent")
        with self._lock:  # tasks running in parallel pull an image once
            if policy == "Never" or name in self._ready:
                return name
            if policy != "Always" and self.podman.run("image", "exists", name, check=False).returncode == 0:
                self._ready.add(name)
                return name
            self._pull(name)
            self._ready.add(name)
            self._pulled.add(name)
        return name

    @contextlib.contextmanager
    def reaping(self, run: str) -> Iterator[None]:
        """While the block runs, a process outside it waits on a pipe from this one; once the pipe closes, as the
        block ends or as this process dies, even by SIGKILL, it removes every container of `run` still there."""
        remove = self.podman.argv("rm", "--force", "--depend", "--time", "0", "--filter", f"label={RUN_LABEL}={run}")
        reaper = subprocess.Popen(
            ["/bin/sh", "-c", 'read -r _; exec "$@"', "reaper", *remove], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.podman.environ(), start_new_session=True,
        )  # fmt: skip
        try:
            yield
        finally:
            assert reaper.stdin is not None
            reaper.stdin.close()  # not waited for: what it removes is what the run left, if anything

    def image_command(self, image: str) -> list[str] | None:
        """The command of a step that gives none, as Tekton looks it up in the image's config: its ENTRYPOINT, else
        its CMD, the step's args following (tektoncd/pipeline: pkg/pod/entrypoint_lookup_impl.go, imageInfo)."""
        config = self._inspect(image).get("Config") or {}
        return list(config.get("Entrypoint") or config.get("Cmd") or []) or None

    def image_user(self, image: str) -> str:
        """The image's USER ("uid", "name", "uid:gid"...; "" where it names none)."""
        return str((self._inspect(image).get("Config") or {}).get("User") or "")

    def image_id(self, image: str) -> str:
        """What Kubernetes reports as the imageID of a container of `image` (the name image_for gave), and Tekton
        copies into steps[].imageID: the repository digest of the image that ran (containerd:
        pkg/cri/server/container_status.go, its first repoDigest), else its id, `sha256:<hex>`."""
        repository, _, digest = image.partition("@")
        if digest:
            return f"{untagged(repository)}@{digest}"
        with self._lock:
            known = self._ids.get(image)
        if known is None:
            pulled = image in self._pulled  # the registry is asked only about a pull of this run's
            served = (lambda: served_digest(image, self.credentials, self.insecure)) if pulled else None
            known = self._ids.setdefault(image, repository_digest(image, self._inspect(image), served))
        return known

    def _inspect(self, image: str) -> dict[str, Any]:
        """`podman image inspect` of a pulled image, once per run (for_run) whatever asks for it."""
        with self._lock:
            if image not in self._inspected:
                listed = json.loads(self.podman.run("image", "inspect", image).stdout or "[]") or [{}]
                self._inspected[image] = listed[0]
            return self._inspected[image]

    def _pull(self, image: str) -> None:
        host = image.split("/", 1)[0]
        options = ["--quiet"]
        if is_loopback(host) or host in self.insecure:
            options.append("--tls-verify=false")
        with tempfile.TemporaryDirectory(prefix="taskhub-pull-") as scratch:
            found = self.credentials(host)
            if found is not None:  # an auth file (mode 0600), not --creds: argv is readable by every user
                auth = base64.b64encode(f"{found[0]}:{found[1]}".encode()).decode()
                authfile = Path(scratch) / "auth.json"
                authfile.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
                options += ["--authfile", str(authfile)]
            try:
                self.podman.run("pull", *options, image)
            except PodmanFailed as exc:
                raise ImageUnavailable(str(exc).split(": ", 1)[-1]) from None

    def network(self, pod: str, scratch: Path, run: str) -> PodNetwork:
        """A network namespace for a pod's containers, held until `PodNetwork.remove`."""
        name = f"{pod}-{secrets.token_hex(3)}-net"
        rootfs = host_rootfs(scratch / "network-rootfs")
        try:
            self.podman.run(
                "run", "-d", "--rm", "--name", name, "--hostname", hostname(pod), *_labels(pod, run),
                *host_program_options(rootfs), "/usr/bin/sleep", "infinity",
            )  # fmt: skip
            address = self.podman.run("inspect", "--format", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()
        except PodmanFailed as exc:
            self.podman.run("rm", "--force", "--ignore", "--time", "0", name, check=False)
            raise RunFailure(TR_POD_CREATION_FAILED, f'pod "{pod}" could not be created: {exc}') from None
        return PodNetwork(self.podman, name, address or "127.0.0.1")


@dataclass(frozen=True)
class PodNetwork:
    """The network holder of one pod: its containers join it (`--network container:NAME`)."""

    podman: Podman
    name: str
    address: str

    def remove(self) -> None:
        """Removes the holder, and any container of the pod still in it; the network namespace goes with them."""
        self.podman.run("rm", "--force", "--depend", "--ignore", "--time", "0", self.name, check=False)


def hostname(pod: str) -> str:
    """A pod's hostname: its name cut to 63 characters, as the kubelet cuts it (kubernetes:
    pkg/kubelet/kubelet_pods.go, truncatePodHostnameIfNeeded)."""
    return pod[:63].rstrip("-.") or pod[:63]


def qualified(image: str) -> str:
    """`image` as a container runtime on Kubernetes reads it: a name without a registry is Docker Hub's
    (`alpine` is docker.io/library/alpine), so podman does not ask which registry is meant."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if rest else f"docker.io/library/{image}"


def _latest(image: str) -> bool:
    """Whether Kubernetes pulls `image` Always by default: its tag is `latest` or it has none, and no digest."""
    if "@" in image:
        return False
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    return tag in ("", "latest")


def link_step_dirs(tekton: Path, steps: list[str]) -> None:
    """/tekton/steps/<i> and /tekton/steps/step-<name>, links to /tekton/run/<i>/status (relative, so that they
    lead there inside every container)."""
    for index, name in enumerate(steps):
        for alias in (str(index), f"step-{name}"):
            link = tekton / "steps" / alias
            if not link.is_symlink():
                link.symlink_to(f"../run/{index}/status")


@dataclass
class ContainerLaunch:
    """How to start one container of a pod with podman (process.Launch)."""

    mode: ContainerMode
    name: str
    image: str
    entrypoint: list[str] | None
    args: list[str]
    options: list[str]
    env: dict[str, str]
    env_file: Path
    probe_address: str
    image_id: str
    paths: PathMap = field(default_factory=lambda: PathMap([]))  # container paths are the container's own

    @property
    def argv(self) -> list[str]:
        """The container's command as given (empty: the image's ENTRYPOINT and CMD)."""
        return [*(self.entrypoint or []), *self.args]

    def start(self, stdout: IO[bytes] | int) -> ContainerProcess:
        """`podman run` of the container, attached: its output is the container's, its exit code the container's."""
        podman = self.mode.podman
        environ = podman.environ()
        lines = []
        for name, value in self.env.items():  # an env file (podman's format is one line each) keeps them off argv
            if "\n" in value:
                environ[name] = value  # a NAME alone takes the value from podman's own environment
                lines.append(name)
            else:
                lines.append(f"{name}={value}")
        self.env_file.write_text("".join(f"{line}\n" for line in lines))
        self.env_file.chmod(0o600)
        entrypoint = ["--entrypoint", json.dumps(self.entrypoint)] if self.entrypoint else []
        command = podman.argv(
            "run", "--rm", "--name", self.name, "--pull", "never", "--env-file", str(self.env_file),
            *self.options, *entrypoint, self.image, *self.args,
        )  # fmt: skip
        proc = subprocess.Popen(
            command, env=environ, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return ContainerProcess(podman, self.name, proc, self.env_file)

    def probe(self, argv: list[str]) -> ContainerProcess:
        """`podman exec` of an exec probe in the running container, as the kubelet runs one."""
        podman = self.mode.podman
        proc = subprocess.Popen(
            podman.argv("exec", self.name, *argv), env=podman.environ(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        return ContainerProcess(podman, None, proc)

    def missing_program(self) -> str | None:
        return None  # the runtime says so itself, with exit code 127


class ContainerProcess:
    """A container as it runs (process.Running): the `podman run` (or `podman exec`) attached to it, and the
    container's name for signals, which podman delivers to the container's PID 1."""

    def __init__(
        self, podman: Podman, name: str | None, proc: subprocess.Popen[bytes], env_file: Path | None = None
    ) -> None:
        self.podman, self.name, self.proc, self.env_file = podman, name, proc, env_file

    def signal(self, sig: int) -> None:
        """Sends `sig` to the container's PID 1 (to the exec for a probe) while it runs."""
        if self.proc.poll() is not None:
            return
        if self.name is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            return
        self.podman.run("kill", "--signal", str(int(sig)), self.name, check=False)

    def kill(self) -> None:
        """SIGKILL to the container until `podman run` has ended: a container not made yet cannot be killed, one
        being made is killed once it is."""
        while self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(KILL_RETRY)

    def wait(self, timeout: float | None = None) -> int:
        code = self.proc.wait(timeout)
        if self.env_file is not None:  # values of Secrets: not kept with the run's logs
            self.env_file.unlink(missing_ok=True)
        return 128 - code if code < 0 else code

    def poll(self) -> int | None:
        return None if self.proc.poll() is None else self.wait()


def prepare_container(
    mode: ContainerMode,
    spec: dict[str, Any],
    *,
    name: str,
    script_name: str,
    mounts: list[Mount],
    writable: tuple[str, ...],
    tekton: Path,
    private: Path,
    pod: str,
    namespace: str,
    lookup: Lookup | None,
    network: PodNetwork | None,
    run: str,
    pod_security: Any = None,
) -> ContainerLaunch:
    """The podman container of a step or sidecar `spec` (its image pulled; ImageUnavailable if it cannot be), as
    its securityContext and the pod's `pod_security` say (RunFailure where the kubelet would refuse it)."""
    image = mode.image_for(str(spec.get("image") or ""), spec.get("imagePullPolicy"))
    args = [str(a) for a in spec.get("args") or []]
    entrypoint = [str(c) for c in spec.get("command") or []] or None
    if spec.get("script"):
        script, _ = write_script(str(spec["script"]), tekton / "scripts", script_name, image)
        entrypoint = [f"/tekton/scripts/{script.name}"]
    elif entrypoint is None:
        entrypoint = mode.image_command(image)
    options = ["--hostname", hostname(pod), *_labels(pod, run)]
    if network is not None:
        options += ["--network", f"container:{network.name}"]
    options += user_options(
        pod_security, spec.get("securityContext"), lambda: mode.image_user(image), pod=pod, namespace=namespace,
        container=name,
    )  # fmt: skip
    working_dir = container_working_dir(spec)
    if working_dir:
        host = PathMap(mounts).host_path(working_dir)
        if host is not None:  # Tekton's working-dir-initializer makes one under /workspace before the steps
            host.mkdir(parents=True, exist_ok=True)
        else:  # the runtime makes it in the image's root: an anonymous volume, the image's content copied up
            options += ["--volume", working_dir]
        options += ["--workdir", working_dir]
    # Sidecars have a /tekton of their own; scripts are Tekton's scripts volume, in every container.
    options += [*_volumes(mounts, writable), "--volume", f"{tekton / 'scripts'}:/tekton/scripts:ro"]
    private.mkdir(parents=True, exist_ok=True)
    env = declared_environment(spec, PathMap([]), pod, namespace, lookup)
    unique = f"{name}-{secrets.token_hex(3)}"
    return ContainerLaunch(
        mode,
        f"{pod}-{unique}",
        image,
        entrypoint,
        args,
        options,
        env,
        private / f"{unique}.env",
        network.address if network is not None else "127.0.0.1",
        mode.image_id(image),
    )


def _labels(pod: str, run: str) -> list[str]:
    return ["--label", f"{POD_LABEL}={pod}", "--label", f"{RUN_LABEL}={run}"]


def _volumes(mounts: list[Mount], writable: tuple[str, ...]) -> list[str]:
    """`--volume` options for a container's mounts at their container paths: protected ones and views read-only,
    then the `writable` paths below protected ones; /tekton/steps/* are links (link_step_dirs), not mounts."""
    volumes: dict[str, str] = {}  # by destination: a later mount at the same path shadows (a volumeMount at /workspace)
    paths = PathMap(mounts)
    for mount in mounts:
        if mount.container.startswith("/tekton/steps/"):
            continue
        read_only = mount.protected or mount.source is not None
        destination = mount.container.rstrip("/") or "/"
        volumes[destination] = f"{mount.source or mount.host}:{destination}:{'ro' if read_only else 'rw'}"
    for path in writable:
        host = paths.host_path(path)
        if host is not None:
            volumes[path] = f"{host}:{path}:rw"
    return [option for volume in volumes.values() for option in ("--volume", volume)]

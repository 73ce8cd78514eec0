"""Which digest a container's image has, as Kubernetes reports it in containerStatuses[].imageID and Tekton copies
into steps[].imageID: the repository digest of the image that ran (containerd: pkg/cri/server/container_status.go,
its first repoDigest), else the image's id, `sha256:<hex>`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from catalog.errors import TaskhubError
from catalog.references import Reference, parse_reference
from catalog.registry import OciRegistry

DEADLINE_SECONDS = 10.0  # for a registry to say which digest it serves for a tag
Credentials = Callable[[str], tuple[str, str] | None]


def repository_digest(image: str, inspected: dict[str, Any], served: Callable[[], str | None] | None) -> str:
    """`repository@sha256:...` of `image` (`host/repository[:tag]`) from its `podman image inspect`. podman lists
    every name of an image with every manifest digest it holds (containers/common: libimage/image.go, RepoDigests),
    so an image built here and pushed has its local manifest's digest beside the one the registry serves: where
    there are several, `served` (None: not to be asked) says which the registry serves."""
    repository = untagged(image)
    digests = [str(d) for d in inspected.get("RepoDigests") or [] if str(d).partition("@")[0] == repository]
    if len(digests) > 1 and served is not None:
        answer = f"{repository}@{served()}"
        if answer in digests:  # else the tag moved since the pull: not what ran
            return answer
    if digests:
        return digests[0]
    return f"sha256:{inspected['Id']}" if inspected.get("Id") else image


def served_digest(image: str, credentials: Credentials, insecure: frozenset[str]) -> str | None:
    """The digest `image`'s registry serves for its tag now; None where it cannot say."""
    try:
        ref = parse_reference(image)
        # Docker Hub's API is not at docker.io (containers/image: docker/docker_client.go, dockerRegistry).
        api = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
        username, password = credentials(ref.registry) or (None, None)
        client = OciRegistry(
            api, username=username, password=password, insecure=ref.registry in insecure, attempts=1,
            deadline=DEADLINE_SECONDS,
        )  # fmt: skip
        return client.head_manifest(Reference(api, ref.repository, ref.tag or "latest"))
    except TaskhubError:
        return None


def untagged(image: str) -> str:
    """`host/repository` of a `host/repository[:tag]`."""
    host, slash, path = image.rpartition("/")
    return f"{host}{slash}{path.partition(':')[0]}"

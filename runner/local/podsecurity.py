"""The user and groups a container of a pod runs as in container mode, from its `securityContext` and the pod's
(`spec.podTemplate.securityContext` of its TaskRun), worked out as the kubelet works them out.

The pod's runAsUser, runAsGroup and runAsNonRoot are defaults that a container's own override (kubernetes:
pkg/securitycontext/util.go, DetermineEffectiveSecurityContext); the pod's fsGroup, then its supplementalGroups,
are added to every container's groups (kubernetes: pkg/kubelet/kuberuntime/security_context.go,
determineEffectiveSecurityContext). A container with runAsNonRoot that would run as root is not started: the
kubelet refuses it with CreateContainerConfigError (kubernetes: pkg/kubelet/kuberuntime/security_context_others.go,
verifyRunAsNonRoot), and Tekton fails the TaskRun with that reason (tektoncd/pipeline: pkg/pod/status.go,
isPodHitConfigError).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.local.errors import RunFailure
from runner.local.status import TR_CONFIG_ERROR

MAX_USER_ID = 2**31 - 1  # kubernetes: staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go, IsValidUserID
_DEFAULTS = ("runAsUser", "runAsGroup", "runAsNonRoot")  # what a container takes from the pod when it sets none


def user_options(
    pod_context: Any, container_context: Any, image_user: Callable[[], str], *, pod: str, namespace: str, container: str
) -> list[str]:
    """podman's `--user` and `--group-add` options for a container; RunFailure(CreateContainerConfigError) where
    runAsNonRoot forbids the user it would run as. `image_user` gives the image's USER ("" for none), asked only
    when the container's user depends on it."""
    pod_sc = pod_context if isinstance(pod_context, dict) else {}
    own = container_context if isinstance(container_context, dict) else {}
    effective = {key: own[key] if own.get(key) is not None else pod_sc.get(key) for key in _DEFAULTS}
    user = _id(effective["runAsUser"], "runAsUser")
    group = _id(effective["runAsGroup"], "runAsGroup")
    if effective["runAsNonRoot"] is True:
        refusal = _non_root_refusal(user, image_user)
        if refusal is not None:
            raise RunFailure(TR_CONFIG_ERROR, f'{refusal} (pod: "{pod}_{namespace}", container: {container})')
    options = []
    if user is not None:
        options += ["--user", str(user) if group is None else f"{user}:{group}"]
    elif group is not None:  # the image's user, root where it names none, in that group (containerd does the same)
        options += ["--user", f"{image_user().split(':')[0] or 0}:{group}"]
    groups = [_id(pod_sc.get("fsGroup"), "fsGroup"), *(_id(g, "supplementalGroups") for g in _list(pod_sc))]
    for extra in dict.fromkeys(g for g in groups if g is not None):
        options += ["--group-add", str(extra)]
    return options


def _non_root_refusal(user: int | None, image_user: Callable[[], str]) -> str | None:
    if user is not None:
        return "container's runAsUser breaks non-root policy" if user == 0 else None
    # The image's USER as a container runtime reads it: its user part, a uid if numeric, else a name; none is root
    # (containerd: pkg/cri/server/image_status.go, getUserFromImage; kubernetes: pkg/kubelet/kuberuntime/helpers.go,
    # getImageUser).
    name = image_user().split(":")[0]
    try:
        uid = int(name or 0)
    except ValueError:
        return f"container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root"
    if uid == 0:
        return "container has runAsNonRoot and image will run as root"
    if not 0 < uid <= MAX_USER_ID:
        return f"container has runAsNonRoot and image has an invalid user id ({uid}). (Must be 1-({MAX_USER_ID}))"
    return None


def _list(pod_sc: dict[str, Any]) -> list[Any]:
    groups = pod_sc.get("supplementalGroups")
    return list(groups) if isinstance(groups, list) else []


def _id(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_USER_ID:
        raise RunFailure(TR_CONFIG_ERROR, f"securityContext.{field}: {value!r} is not an id from 0 to {MAX_USER_ID}")
    return value

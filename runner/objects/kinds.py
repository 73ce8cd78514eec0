"""The kinds of objects the hub keeps, as a cluster serves them: group, versions, scope, and the names
`taskhub get` accepts (kind, plural, short names, as `kubectl api-resources` lists them).

Sources: tektoncd/triggers: config/300-*.yaml (Triggers CRDs), tektoncd/pipeline: config/300-crds/*.yaml
(Task, Pipeline, StepAction), and the core/v1 kinds of Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.errors import InvalidKind

TRIGGERS = "triggers.tekton.dev"
TEKTON = "tekton.dev"
CORE = ""


@dataclass(frozen=True)
class KindInfo:
    group: str
    kind: str
    versions: tuple[str, ...]  # served, the stored one first
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True

    @property
    def stored_version(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        version = version or self.stored_version
        return f"{self.group}/{version}" if self.group else version

    def api_versions(self) -> list[str]:
        return [self.api_version(v) for v in self.versions]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.kind.lower(), self.plural, *self.short_names)


KINDS: tuple[KindInfo, ...] = (
    KindInfo(TRIGGERS, "EventListener", ("v1beta1", "v1alpha1"), "eventlisteners", ("el",)),
    KindInfo(TRIGGERS, "Trigger", ("v1beta1", "v1alpha1"), "triggers", ("tri",)),
    KindInfo(TRIGGERS, "TriggerBinding", ("v1beta1", "v1alpha1"), "triggerbindings", ("tb",)),
    KindInfo(TRIGGERS, "ClusterTriggerBinding", ("v1beta1", "v1alpha1"), "clustertriggerbindings", ("ctb",), False),
    KindInfo(TRIGGERS, "TriggerTemplate", ("v1beta1", "v1alpha1"), "triggertemplates", ("tt",)),
    KindInfo(TRIGGERS, "Interceptor", ("v1alpha1",), "interceptors", ("ni",)),
    KindInfo(TRIGGERS, "ClusterInterceptor", ("v1alpha1",), "clusterinterceptors", ("ci",), False),
    KindInfo(TEKTON, "Task", ("v1", "v1beta1"), "tasks"),
    KindInfo(TEKTON, "Pipeline", ("v1", "v1beta1"), "pipelines"),
    KindInfo(TEKTON, "StepAction", ("v1beta1", "v1alpha1"), "stepactions"),
    KindInfo(CORE, "ConfigMap", ("v1",), "configmaps", ("cm",)),
    KindInfo(CORE, "Secret", ("v1",), "secrets"),
    KindInfo(CORE, "PersistentVolumeClaim", ("v1",), "persistentvolumeclaims", ("pvc",)),
)
_BY_NAME = {name: info for info in KINDS for name in (*info.names, info.kind)}
_BY_KIND = {(info.group, info.kind): info for info in KINDS}


def known_kinds() -> str:
    return ", ".join(info.kind for info in KINDS)


def kind_named(name: str) -> KindInfo:
    """The kind a command line or URL names (Kind, kind, plural or short name; `kind.group` too)."""
    base, _, group = name.partition(".")
    info = _BY_NAME.get(base) or _BY_NAME.get(base.lower())
    if info is None or (group and group != info.group):
        raise InvalidKind(f'the hub keeps no objects of kind "{name}"; it keeps {known_kinds()}')
    return info


def kind_of(api_version: str, kind: str) -> KindInfo:
    """The kind of a manifest's apiVersion and kind; InvalidKind saying which versions are served."""
    group, _, version = api_version.rpartition("/")
    info = _BY_KIND.get((group, kind))
    if info is None:
        candidates = [i for i in KINDS if i.kind == kind]
        if candidates:
            served = " or ".join(candidates[0].api_versions())
            raise InvalidKind(f'{kind} is served as {served}, not "{api_version}"')
        raise InvalidKind(f'the hub keeps no objects of kind "{kind}" ({api_version}); it keeps {known_kinds()}')
    if version not in info.versions:
        raise InvalidKind(f'{kind} is served as {" or ".join(info.api_versions())}, not "{api_version}"')
    return info

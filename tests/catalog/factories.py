"""Small synthetic catalogs for tests that need a case the test catalog does not have."""

from __future__ import annotations

from pathlib import Path


def task_yaml(
    name: str,
    version: str = "0.1",
    *,
    api_version: str = "tekton.dev/v1",
    kind: str = "Task",
    description: str = "Says hello.",
    extra_annotations: str = "",
    min_version: str = "0.50.0",
) -> str:
    return f"""apiVersion: {api_version}
kind: {kind}
metadata:
  name: {name}
  labels:
    app.kubernetes.io/version: "{version}"
  annotations:
    tekton.dev/pipelines.minVersion: "{min_version}"
    tekton.dev/displayName: "{name.replace("-", " ").title()}"
    tekton.dev/tags: "greeting, demo"
    tekton.dev/categories: "Developer Tools"
    tekton.dev/platforms: "linux/amd64,linux/arm64"
{extra_annotations}spec:
  description: >-
    {description}
  steps:
    - name: hello
      image: docker.io/library/busybox:1.36
      script: echo hello
"""


def write_version(
    root: Path,
    name: str,
    version: str,
    text: str | bytes | None = None,
    *,
    folder: str = "task",
    readme: str = "",
) -> Path:
    """Write <folder>/<name>/<version>/<name>.yaml (and README.md) under root; returns the manifest path."""
    directory = root / folder / name / version
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / f"{name}.yaml"
    content = task_yaml(name, version) if text is None else text
    if isinstance(content, bytes):
        manifest.write_bytes(content)
    else:
        manifest.write_text(content)
    (directory / "README.md").write_text(readme or f"# {name} {version}\n")
    return manifest

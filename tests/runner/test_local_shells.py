"""Scripts run by the shell their image has: busybox ash for alpine, busybox and bash images (whatever their
`sh`/`ash` shebang), dash for Debian and Ubuntu images, bash where they ask for bash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from runner.local import LocalExecutor, LocalRun

# Accepted by busybox ash and bash, refused by dash: `==` inside `[ ]` and `[[ ]]`.
ASH_ONLY = '[ "$(echo a)" == a ] && [[ b == b ]] && echo "ran with $1"'
SHEBANGS = ["", "#!/bin/sh", "#!/bin/ash", "#!/bin/sh -e", "#!/usr/bin/env sh", "#!/usr/bin/env ash"]


def run_script(tmp_path: Path, image: str, script: str) -> LocalRun:
    obj = yaml.safe_load(f"""
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: shell}}
spec:
  taskSpec:
    steps:
    - name: check
      image: {image}
      args: [arg1]
      script: {json.dumps(script)}
""")
    return LocalExecutor(tmp_path).run(obj)


def outcome(result: LocalRun) -> tuple[int, str]:
    state = result.object["status"]["steps"][0]["terminated"]
    return state["exitCode"], next(log.path for log in result.logs).read_text()


@pytest.mark.parametrize("image", ["alpine", "docker.io/library/busybox:1.36", "bash:5.2", "python:3.12-alpine"])
@pytest.mark.parametrize("shebang", SHEBANGS)
def test_busybox_images_run_sh_and_ash_scripts_under_busybox(tmp_path: Path, image: str, shebang: str) -> None:
    script = f"{shebang}\n{ASH_ONLY}\n" if shebang else ASH_ONLY
    assert outcome(run_script(tmp_path, image, script)) == (0, "ran with arg1\n")


@pytest.mark.parametrize("shebang", ["", "#!/bin/sh"])
def test_debian_images_run_sh_scripts_under_dash(tmp_path: Path, shebang: str) -> None:
    script = f"{shebang}\n{ASH_ONLY}\n" if shebang else ASH_ONLY
    code, log = outcome(run_script(tmp_path, "ubuntu", script))
    assert code == 2 and "unexpected operator" in log


@pytest.mark.parametrize("image", ["alpine", "ubuntu"])
def test_bash_shebangs_get_bash(tmp_path: Path, image: str) -> None:
    script = '#!/usr/bin/env bash\n[[ "${BASH_VERSION:-}" ]] && echo "bash with $1"'
    assert outcome(run_script(tmp_path, image, script)) == (0, "bash with arg1\n")

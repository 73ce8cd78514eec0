"""Unit tests of the local executor's building blocks: substitution, durations, the DAG, matrix, when."""

from __future__ import annotations

import pytest

from runner.local.dag import GraphError, build_graph
from runner.local.durations import format_duration, parse_duration
from runner.local.hostpaths import Mount, PathMap
from runner.local.imagedigests import repository_digest
from runner.local.matrix import combinations
from runner.local.params import ParamError, resolve_params
from runner.local.steps import merge_step_template, when_passes
from runner.local.substitution import Replacements, add_value, replace_text, substitute, substitute_param_value


def _params(**values: object) -> Replacements:
    reps = Replacements()
    for name, value in values.items():
        add_value(reps, "params", name, value)  # type: ignore[arg-type]
    return reps


def test_every_spelling_of_a_param_is_replaced_and_unknown_references_stay_verbatim() -> None:
    reps = _params(msg="hi")
    text = "$(params.msg) $(params[\"msg\"]) $(params['msg']) $(params.other) $(context.task2.status)"
    assert replace_text(text, reps) == "hi hi hi $(params.other) $(context.task2.status)"


def test_a_value_inserted_by_a_pass_is_not_rescanned_by_that_pass() -> None:
    reps = _params(a="$(params.b)", b="B")
    assert replace_text("$(params.a)", reps) == "$(params.b)"


def test_shell_command_substitution_around_a_reference_is_left_to_the_shell() -> None:
    reps = Replacements(strings={"workspaces.vault.path": "/workspace/vault"})
    assert replace_text("$(cat $(workspaces.vault.path)/password)", reps) == "$(cat /workspace/vault/password)"


def test_an_array_expands_in_place_only_as_a_whole_list_element() -> None:
    reps = _params(args=["a", "b c"])
    assert substitute(["first", "$(params.args[*])", "last"], reps) == ["first", "a", "b c", "last"]
    assert substitute(["x $(params.args[1])"], reps) == ["x b c"]
    assert substitute(["x $(params.args[*])"], reps) == ["x $(params.args[*])"]


def test_a_whole_object_reference_passes_the_object_as_a_param_value() -> None:
    reps = _params(obj={"k": "v"})
    assert substitute_param_value("$(params.obj[*])", reps) == {"k": "v"}
    assert substitute_param_value("$(params.obj.k)!", reps) == "v!"


@pytest.mark.parametrize(
    ("text", "seconds", "go"),
    [
        ("1h", 3600, "1h0m0s"),
        ("1m30s", 90, "1m30s"),
        ("40s", 40, "40s"),
        ("500ms", 0.5, "500ms"),
        ("1.5s", 1.5, "1.5s"),
    ],
)
def test_go_durations_parse_and_print_as_tekton_writes_them(text: str, seconds: float, go: str) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == go


def test_a_malformed_duration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid duration '10 minutes'"):
        parse_duration("10 minutes")


def test_params_take_defaults_merge_object_keys_and_check_enums() -> None:
    decls = [
        {"name": "s", "default": "d"},
        {"name": "o", "properties": {"a": {}, "b": {}}, "default": {"a": "1", "b": "2"}},
        {"name": "e", "enum": ["x", "y"]},
    ]
    values = resolve_params(decls, {"o": {"b": "B"}, "e": "y"}, propagate=False)
    assert values == {"s": "d", "o": {"a": "1", "b": "B"}, "e": "y"}
    with pytest.raises(ParamError, match="param `e` value: z is not in the enum list"):
        resolve_params(decls, {"e": "z"}, propagate=False)
    with pytest.raises(ParamError, match=r"missing values for these params which have no default values: \[e\]"):
        resolve_params(decls, {}, propagate=False)
    with pytest.raises(ParamError, match=r"param types don't match the user-specified type: \[s\]"):
        resolve_params(decls, {"s": ["a"], "e": "x"}, propagate=False)


def test_a_default_may_name_another_param() -> None:
    decls = [{"name": "a"}, {"name": "b", "default": "from $(params.a)"}]
    assert resolve_params(decls, {"a": "A"}, propagate=False)["b"] == "from A"


def test_the_graph_has_edges_from_run_after_and_result_references() -> None:
    tasks = [
        {"name": "a"},
        {"name": "b", "runAfter": ["a"]},
        {"name": "c", "params": [{"name": "p", "value": "$(tasks.b.results.r)"}]},
    ]
    assert build_graph(tasks, [{"name": "f"}]) == {"a": set(), "b": {"a"}, "c": {"b"}, "f": set()}


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([{"name": "a", "runAfter": ["b"]}, {"name": "b", "runAfter": ["a"]}], "cycle detected"),
        ([{"name": "a", "runAfter": ["x"]}], "task a depends on x but x wasn't present in Pipeline"),
        ([{"name": "a"}, {"name": "a"}], 'duplicate pipeline task "a"'),
    ],
)
def test_invalid_graphs_are_refused_with_tektons_words(tasks: list[dict[str, object]], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        build_graph(tasks, [])


def test_matrix_combinations_vary_the_first_param_fastest_and_merge_includes() -> None:
    combos = combinations(
        {
            "params": [{"name": "p", "value": ["a", "b"]}, {"name": "q", "value": ["x", "y"]}],
            "include": [{"name": "extra", "params": [{"name": "p", "value": "a"}, {"name": "flag", "value": "on"}]}],
        }
    )
    assert combos == [
        {"p": "a", "q": "x", "flag": "on"},
        {"p": "b", "q": "x"},
        {"p": "a", "q": "y", "flag": "on"},
        {"p": "b", "q": "y"},
    ]


def test_an_include_only_matrix_runs_exactly_the_includes() -> None:
    combos = combinations(
        {
            "include": [
                {"name": "one", "params": [{"name": "IMAGE", "value": "i1"}]},
                {"name": "two", "params": [{"name": "IMAGE", "value": "i2"}, {"name": "ARGS", "value": "-v"}]},
            ]
        }
    )
    assert combos == [{"IMAGE": "i1"}, {"IMAGE": "i2", "ARGS": "-v"}]


def test_when_expressions_compare_exact_strings_and_are_anded() -> None:
    assert when_passes(
        [{"input": "a", "operator": "in", "values": ["a"]}, {"input": "b", "operator": "notin", "values": ["a"]}]
    )
    assert not when_passes([{"input": "a\n", "operator": "in", "values": ["a"]}])


def test_step_template_env_merges_by_name_and_the_step_wins() -> None:
    merged = merge_step_template(
        {"image": "alpine", "env": [{"name": "A", "value": "t"}, {"name": "B", "value": "t"}]},
        {"name": "s", "env": [{"name": "B", "value": "s"}]},
    )
    assert merged["image"] == "alpine"
    assert merged["env"] == [{"name": "A", "value": "t"}, {"name": "B", "value": "s"}]


def test_container_paths_are_rewritten_only_as_whole_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    paths = PathMap([Mount("/workspace", tmp_path / "ws"), Mount("/workspace/src", tmp_path / "src")])
    text = "cd /workspace/src/x && cat /workspace/a /workspaces/b /opt/workspace http://h/workspace"
    assert paths.rewrite(text) == (
        f"cd {tmp_path}/src/x && cat {tmp_path}/ws/a /workspaces/b /opt/workspace http://h/workspace"
    )


LOCAL, SERVED = "sha256:" + "1" * 64, "sha256:" + "2" * 64
BUILT_AND_PUSHED = {
    "Id": "f" * 64,
    "RepoDigests": [f"r.io/app@{LOCAL}", f"r.io/app@{SERVED}", f"other.io/app@{SERVED}"],
}


@pytest.mark.parametrize(
    ("inspected", "served", "image_id"),
    [
        (BUILT_AND_PUSHED, SERVED, f"r.io/app@{SERVED}"),  # the registry says which of the image's digests it serves
        (BUILT_AND_PUSHED, "sha256:" + "3" * 64, f"r.io/app@{LOCAL}"),  # the tag moved since: podman's first
        (BUILT_AND_PUSHED, None, f"r.io/app@{LOCAL}"),  # the registry cannot say
        ({"Id": "f" * 64, "RepoDigests": [f"other.io/app@{SERVED}"]}, SERVED, "sha256:" + "f" * 64),  # built here
    ],
)
def test_an_image_id_is_the_repository_digest_that_ran(inspected: dict, served: str | None, image_id: str) -> None:
    assert repository_digest("r.io/app:1.0", inspected, lambda: served) == image_id

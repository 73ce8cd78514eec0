"""Acceptance checks 10-18 of the Triggers spec and its extra negative checks: bindings, serialisation,
templates, CEL overlays, `$(uid)` and `$$(`."""

from __future__ import annotations

import json

from tests.triggers.support import Setup


def listener(triggers: str, extra: str = "", annotations: str = "") -> str:
    return f"""
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: el1
  {annotations}
spec:
  triggers:
{triggers}
{extra}"""


def inline(name: str, bindings: str, field: str = "value: '$(tt.params.x)'", params: str = "[{name: x}]") -> str:
    return f"""  - name: {name}
    bindings: {bindings}
    template:
      spec:
        params: {params}
        resourcetemplates:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {{generateName: cm-}}
          data:
            {field}
"""


def created_value(outcome, name: str) -> str:
    trigger = next(t for t in outcome.triggers if t.trigger == name)
    assert trigger.status == "created", trigger.reason
    return trigger.resources[0].manifest["data"]["value"]


def test_10_missing_field_without_default_fails_the_trigger():
    setup = Setup(listener(inline("t", "[{name: rev, value: $(body.missing)}]", "value: $(tt.params.rev)",
                                  "[{name: rev}]")))  # fmt: skip
    answer, outcome = setup.send("el1", b'{"a":1}')
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert (trigger.status, trigger.resources) == ("failed", ())
    assert trigger.reason == (
        "failed to ApplyEventValuesToParams: failed to replace JSONPath value for param rev: $(body.missing): "
        "missing is not found"
    )


def test_11_headers_canonicalised_and_repeated_values_joined_with_a_comma():
    bindings = "[{name: e, value: $(header.x-github-event)}, {name: f, value: $(header.X-Foo)}]"
    field = "value: '$(tt.params.e)|$(tt.params.f)'"
    setup = Setup(listener(inline("t", bindings, field, "[{name: e}, {name: f}]")))
    _, outcome = setup.send("el1", b"{}", [("X-GitHub-Event", "push"), ("X-Foo", "a"), ("x-foo", "b")])
    assert outcome.triggers[0].params == {"e": "push", "f": "a,b"}
    assert created_value(outcome, "t") == "push|a,b"


def test_12_each_json_type_serialised_and_objects_in_quoted_fields_break_the_json():
    paths = {"n": "body.n", "f": "body.f", "b": "body.b", "z": "body.z", "a0": "body.arr[0]",
             "o": "body.o", "arr": "body.arr"}  # fmt: skip
    triggers = "".join(inline(name, f"[{{name: x, value: '$({path})'}}]") for name, path in paths.items())
    body = b'{"n":42,"f":1.5,"b":true,"z":null,"o":{"b":1,"a":"x"},"arr":["p","q"]}'
    answer, outcome = Setup(listener(triggers)).send("el1", body)
    assert answer.status == 202
    assert [created_value(outcome, n) for n in ("n", "f", "b", "z", "a0")] == ["42", "1.5", "true", "null", "p"]
    by_name = {t.trigger: t for t in outcome.triggers}
    for name, text in (("o", '{"a":"x","b":1}'), ("arr", '["p","q"]')):
        trigger = by_name[name]
        assert (trigger.status, trigger.resources) == ("failed", ())
        assert trigger.reason.startswith("couldn't unmarshal json from the TriggerTemplate: invalid character")
        assert text.split('"')[1] in trigger.reason


def test_13_strings_escaped_as_go_json_then_read_back():
    setup = Setup(listener(inline("t", "[{name: x, value: $(body.s)}]")))
    _, outcome = setup.send("el1", json.dumps({"s": 'say "hi"\n<&>'}).encode())
    assert outcome.triggers[0].params["x"] == 'say \\"hi\\"\\n\\u003c\\u0026\\u003e'
    assert created_value(outcome, "t") == 'say "hi"\n<&>'


def test_13_non_ascii_and_control_characters_round_trip():
    setup = Setup(listener(inline("t", "[{name: x, value: $(body.s)}]")))
    _, outcome = setup.send("el1", json.dumps({"s": "v\r\n烈\t\u2028"}).encode())
    assert outcome.triggers[0].params["x"] == "v\\r\\n烈\\t\\u2028"
    assert created_value(outcome, "t") == "v\r\n烈\t\u2028"


def test_14_a_static_binding_value_is_not_escaped_and_breaks_the_json():
    setup = Setup(listener(inline("t", """[{name: x, value: 'say "hi"'}]""")))
    answer, outcome = setup.send("el1", b"{}")
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert trigger.status == "failed"
    assert trigger.reason.startswith("couldn't unmarshal json from the TriggerTemplate")


CEL_TRIGGER = """  - name: cel-trig
    interceptors:
    - ref: {name: cel}
      params:
      - name: filter
        value: header.match('X-GitHub-Event', 'pull_request')
      - name: overlays
        value:
        - {key: truncated_sha, expression: "body.pull_request.head.sha.truncate(7)"}
        - {key: branch, expression: "body.ref.split('/')[2]"}
    bindings:
    - {name: sha, value: $(extensions.truncated_sha)}
    - {name: branch, value: $(extensions.branch)}
    template:
      spec:
        params: [{name: sha}, {name: branch}]
        resourcetemplates:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {generateName: cm-}
          data: {value: '$(tt.params.sha)@$(tt.params.branch)'}
"""
CEL_BODY = b'{"ref":"refs/heads/main","pull_request":{"head":{"sha":"6113728f27ae82c7b1a177c8d03f9e96e0adf246"}}}'


def test_15_cel_filter_and_overlays_feed_the_bindings():
    setup = Setup(listener(CEL_TRIGGER))
    _, outcome = setup.send("el1", CEL_BODY, [("X-GitHub-Event", "pull_request")])
    (trigger,) = outcome.triggers
    assert trigger.params == {"sha": "6113728", "branch": "main"}
    assert trigger.extensions == {"truncated_sha": "6113728", "branch": "main"}
    _, pushed = setup.send("el1", CEL_BODY, [("X-GitHub-Event", "push")])
    (stopped,) = pushed.triggers
    assert (stopped.status, stopped.interceptor, stopped.resources) == ("stopped", "cel", ())
    assert stopped.reason.endswith("expression header.match('X-GitHub-Event', 'pull_request') did not return true")


TWO_TEMPLATES = """  - name: two
    template:
      spec:
        resourcetemplates:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: a-$(uid)}
        - apiVersion: tekton.dev/v1
          kind: TaskRun
          metadata: {name: b-$(uid)}
          spec: {taskRef: {name: t}}
"""


def test_17_uid_is_shared_within_a_trigger_execution_and_new_for_the_next():
    setup = Setup(listener(TWO_TEMPLATES))
    first = [r.name for r in setup.send("el1", b"{}")[1].resources]
    second = [r.name for r in setup.send("el1", b"{}", event_id="ev-2")[1].resources]
    assert first == ["a-uid-1", "b-uid-1"]
    assert second == ["a-uid-2", "b-uid-2"]


def test_17_real_uids_are_uuid4():
    from tests.triggers.support import MemorySecrets
    from triggers.engine import EventRequest, TriggersEngine

    setup = Setup(listener(TWO_TEMPLATES))
    engine = TriggersEngine(setup.store, MemorySecrets())
    outcome = engine.process_event(setup.listeners["el1"], EventRequest("POST", "/", {}, b"{}"), "ev")
    a, b = (r.name for r in outcome.resources)
    assert a[2:] == b[2:] and len(a[2:]) == 36 and a[2:][14] == "4"


def test_18_variables_in_event_text_are_escaped_with_a_double_dollar():
    setup = Setup(listener(inline("t", "[{name: x, value: $(body.title)}]")))
    _, outcome = setup.send("el1", b'{"title":"use $(params.x)"}')
    assert created_value(outcome, "t") == "use $$(params.x)"


def test_unknown_trigger_ref_is_recorded_and_still_202():
    setup = Setup(listener("  - triggerRef: unknown"))
    answer, outcome = setup.send("el1", b"{}")
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert trigger.status == "failed"
    assert trigger.reason == (
        'Error getting Trigger unknown in Namespace ns1: triggers.triggers.tekton.dev "unknown" not found'
    )


def test_validation_off_and_a_text_body_fails_the_trigger_without_interceptors():
    setup = Setup(listener(inline("t", "[{name: x, value: $(body.a)}]"),
                           annotations='annotations: {tekton.dev/payload-validation: "false"}'))  # fmt: skip
    answer, outcome = setup.send("el1", b"hello")
    assert answer.status == 202
    assert outcome.triggers[0].reason == (
        "failed to ApplyEventValuesToParams: failed to marshal event: failed to unmarshal request body: "
        "invalid character 'h' looking for beginning of value"
    )


def test_missing_template_and_binding_and_duplicate_params_are_recorded():
    text = listener(
        "  - {name: a, bindings: [{ref: nope}], template: {ref: tt}}\n"
        "  - {name: b, template: {ref: missing}}\n"
        "  - {name: c, bindings: [{name: x, value: '1'}, {name: x, value: '2'}], template: {ref: tt}}",
        "---\napiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerTemplate\nmetadata: {name: tt}\n"
        "spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {name: x}}]}",
    )
    _, outcome = Setup(text).send("el1", b"{}")
    reasons = {t.trigger: t.reason for t in outcome.triggers}
    assert reasons["a"] == (
        'failed to resolve bindings: error getting TriggerBinding nope: triggerbindings.triggers.tekton.dev "nope" '
        "not found"
    )
    assert (
        reasons["b"]
        == 'error getting TriggerTemplate missing: triggertemplates.triggers.tekton.dev "missing" not found'
    )
    assert reasons["c"] == "failed to resolve bindings: duplicate param name: x"


def test_created_objects_keep_their_namespace_or_take_the_triggers():
    text = listener(
        "",
        """---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: foo-trigger, namespace: foo, labels: {team: a}}
spec:
  serviceAccountName: foo-trigger-sa
  template:
    spec:
      resourcetemplates:
      - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: mine-}}
      - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: theirs-, namespace: elsewhere}}
""",
    ).replace("  triggers:\n", "  namespaceSelector: {matchNames: [foo]}\n")
    _, outcome = Setup(text).send("el1", b"{}")
    (trigger,) = outcome.triggers
    assert (trigger.trigger_id, trigger.service_account_name) == (
        "namespaces/foo/triggers/foo-trigger",
        "foo-trigger-sa",
    )
    assert [r.namespace for r in trigger.resources] == ["foo", "elsewhere"]


def test_old_escape_quotes_annotation_escapes_quotes_in_values():
    text = listener(
        "  - {name: t, bindings: [{name: x, value: $(body.o)}], template: {ref: tt}}",
        """---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: tt
  annotations: {triggers.tekton.dev/old-escape-quotes: "true"}
spec:
  params: [{name: x}]
  resourcetemplates:
  - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}, data: {value: '$(tt.params.x)'}}
""",
    )
    _, outcome = Setup(text).send("el1", b'{"o":{"a":"b"}}')
    assert created_value(outcome, "t") == '{"a":"b"}'


def test_hostile_bodies_get_answers_not_exceptions():
    setup = Setup(
        listener(
            inline("t", "[{name: x, value: $(body.a)}]")
            + "    interceptors: [{ref: {name: cel}, params: [{name: filter, value: 'true'}]}]\n",
            annotations='annotations: {tekton.dev/payload-validation: "false"}',
        )
    )
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    answer, outcome = setup.send("el1", deep)
    assert answer.status == 202
    assert outcome.triggers[0].reason.endswith("failed to parse the body as JSON: exceeded max depth")
    answer, outcome = setup.send("el1", b'{"a":"\xff\xfe"}')
    assert outcome.triggers[0].params == {"x": "\ufffd\ufffd"}
    on = Setup(listener(inline("t", "[{name: x, value: $(body.a)}]")))
    assert json.loads(on.send("el1", deep)[0].body)["errorMessage"] == "Invalid event body format : exceeded max depth"

"""JSONPath as Triggers evaluates it, Go's JSON decoding errors, and the CEL functions Triggers adds,
including expressions that fail or would run without end."""

from __future__ import annotations

import re

import pytest

from triggers.bindings import find_expressions
from triggers.headers import canonical_key
from triggers.interceptors import InterceptorRequest, RequestContext
from triggers.interceptors.cel import cel
from triggers.interceptors.common import CoreServices
from triggers.jsonbody import BodyError, decode, decode_object
from triggers.jsonpath import JSONPathError, evaluate

from .support import MemorySecrets

EVENT = {
    "body": decode(
        b'{"a":"b","c":{"d":"e"},"arr":[1,2,3],"big":1e20,"huge":1e21,"small":0.000001,"tiny":1e-7,'
        b'"int":12345678901234567890,"dev.tekton.dev/foo":"escaped","list":[{"name":"x","v":1},{"name":"y","v":2}],'
        b'"empty":"","u":"\xe2\x9c\x93"}'
    ),
    "header": {"Header-One": "val1,val2"},
    "extensions": {},
    "context": {"eventID": "ev"},
}


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("body.a", "b"),
        (".body.a", "b"),
        ("{body.a}", "b"),
        ("{.body.a}", "b"),
        ("body.c", '{"d":"e"}'),
        ("body.arr[-1]", "3"),
        ("body.arr[1:]", "[2,3]"),
        ("body.arr[*]", "[1,2,3]"),
        ("body.arr[0,2]", "[1,3]"),
        ("body.big", "100000000000000000000"),
        ("body.huge", "1e+21"),
        ("body.small", "0.000001"),
        ("body.tiny", "1e-7"),
        ("body.int", "12345678901234567000"),
        (r"body.dev\.tekton\.dev\/foo", "escaped"),
        ('body.list[?(@.name=="y")].v', "2"),
        ("body.list[?(@.v>1)].name", "y"),
        ("body.list[*].name", '["x","y"]'),
        ("body.u", "✓"),
        ("body.empty", ""),
        ("header", '{"Header-One":"val1,val2"}'),
        ("header.Header-One", "val1,val2"),
        ("context.eventID", "ev"),
        ("extensions", "{}"),
    ],
)
def test_jsonpath_results(expression, text):
    assert evaluate(EVENT, expression) == text


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("body.missing", "missing is not found"),
        ("body.a[0]", "string is not array or slice"),
        ("body.arr[5]", "array index out of bounds: index 5, length 3"),
        ("header.Header-One[1]", "string is not array or slice"),
        ("body.arr[x]", "invalid array index x"),
        ("", "expression not wrapped in $()"),
    ],
)
def test_jsonpath_errors(expression, error):
    with pytest.raises(JSONPathError, match=re.escape(error)):
        evaluate(EVENT, expression)


def test_expressions_end_at_the_first_unbalanced_parenthesis():
    assert find_expressions("$(a)-$(b") == [("a", "$(a)")]
    assert find_expressions("$($(body.b))") == [("body.b", "$(body.b)")]
    assert find_expressions("x $(header.x-github-event) y") == [("header.X-Github-Event", "$(header.x-github-event)")]


def test_canonical_header_keys():
    assert [canonical_key(k) for k in ("x-github-event", "X-GITHUB-EVENT", "content-md5", "a b", "")] == [
        "X-Github-Event", "X-Github-Event", "Content-Md5", "a b", "",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unexpected end of JSON input"),
        (b"{", "unexpected end of JSON input"),
        (b"{,", "invalid character ',' looking for beginning of object key string"),
        (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
        (b"[1,]", "invalid character ']' looking for beginning of value"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b'{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
        (b"{} x", "invalid character 'x' after top-level value"),
        (b'"a\x01"', "invalid character '\\x01' in string literal"),
        (b'"\\q"', "invalid character 'q' in string escape code"),
        (b"-x", "invalid character 'x' in numeric literal"),
        (b"1.e", "invalid character 'e' after decimal point in numeric literal"),
        (b"tru", "unexpected end of JSON input"),
        (b"nul!", "invalid character '!' in literal null (expecting 'l')"),
        (b"1e400", "json: cannot unmarshal number 1e400 into Go value of type float64"),
    ],
)
def test_go_json_errors(data, message):
    with pytest.raises(BodyError) as caught:
        decode(data)
    assert str(caught.value) == message


def test_only_objects_and_null_are_objects():
    assert decode_object(b" null ") is None
    assert decode_object(b'{"a":1}') == {"a": 1.0}
    with pytest.raises(BodyError, match="cannot unmarshal string into Go value of type map"):
        decode_object(b'"s"')


SECRETS = MemorySecrets({("ns1", "s"): {"k": b"token"}})


def run_cel(filter_: str = "", overlays: list | None = None, body: str = '{"a":"b"}', header=None, extensions=None):
    params = {"filter": filter_, "overlays": overlays or []}
    request = InterceptorRequest(
        body=body,
        header=header or {"X-Github-Event": ["push"], "X-Token": ["token"]},
        extensions=extensions or {},
        interceptor_params=params,
        context=RequestContext("/p?q=1", "ev", "namespaces/ns1/triggers/t"),
    )
    return cel(request, CoreServices(SECRETS))


def overlay(expression: str, body: str = '{"a":"b"}'):
    response = run_cel(overlays=[{"key": "v", "expression": expression}], body=body)
    assert response.continue_, response.message
    return response.extensions["v"]


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("header.canonical('x-github-event')", "push"),
        ("header.canonical('X-Missing')", ""),
        ("'ec26c3e57ca3a959ca5aad62de7213c562f8c821'.truncate(7)", "ec26c3e"),
        ("'ab'.truncate(7)", "ab"),
        ("header.canonical('X-Token').compareSecret('k', 's')", True),
        ("'nope'.compareSecret('k', 's', 'other-namespace')", False),
        ("'{\"x\": {\"y\": 1}}'.parseJSON().x.y", 1.0),
        ("'x: [1, 2]'.parseYAML().x", [1.0, 2.0]),
        ("'https://u:p@example.com:8080/a/b?x=1&x=2&y=3#frag'.parseURL()", {
            "scheme": "https", "host": "example.com:8080", "path": "/a/b", "rawQuery": "x=1&x=2&y=3",
            "fragment": "frag", "queryStrings": {"x": ["1", "2"], "y": ["3"]}, "query": {"x": "1,2", "y": "3"},
            "auth": {"username": "u", "password": "p"}}),
        ("{'string': 'value', 'integer': 2}.marshalJSON()", '{"integer":2,"string":"value"}'),
        ("[1, 2].first()", 1.0),
        ("[].last()", None),
        ("'refs/heads/main'.translate('refs/heads/(.*)', 'branch-$1')", "branch-main"),
        ("'refs/heads/main'.split('/')[2]", "main"),
        ("'A-b'.lowerAscii() + 'c'.upperAscii()", "a-bC"),
        ("body.a + requestURL", "b/p?q=1"),
        ("b'hi'", "aGk="),
        ("[1, 'x', true]", [1.0, "x", True]),
    ],
)  # fmt: skip
def test_triggers_functions(expression, value):
    assert overlay(expression) == value


def test_numbers_are_doubles_as_in_go():
    response = run_cel(overlays=[{"key": "v", "expression": "body.count + 1"}], body='{"count": 1}')
    assert not response.continue_ and response.code == 3
    assert overlay("body.count + 1.0", '{"count": 1}') == 2.0


def test_overlays_see_the_original_context_and_nest_dotted_keys():
    response = run_cel(
        overlays=[{"key": "a.b", "expression": "'x'"}, {"key": "extensions.truncated_sha", "expression": "'y'"}]
    )
    assert response.extensions == {"a": {"b": "x"}, "extensions": {"truncated_sha": "y"}}


@pytest.mark.parametrize(
    ("filter_", "code", "message"),
    [
        ("body.a == 'c'", 9, "expression body.a == 'c' did not return true"),
        ("'not a bool'", 9, "did not return true"),
        ("body.missing == 1", 3, 'error evaluating cel expression: expression "body.missing == 1" failed to evaluate'),
        ("body.a ==", 3, 'error evaluating cel expression: failed to parse expression "body.a =="'),
        ("'x'.compareSecret('k', 'absent')", 3, 'secrets "absent" not found'),
        ("'[' .translate('[', 'x') == ''", 3, "failed to compile regex"),
    ],
)
def test_filters_that_fail_stop_with_a_reason(filter_, code, message):
    response = run_cel(filter_)
    assert (response.continue_, response.code) == (False, code)
    assert message in response.message


def test_a_body_that_is_not_an_object_fails_cel():
    response = run_cel("true", body="[1]")
    assert response.code == 3
    assert "failed to parse the body as JSON" in response.message


def test_an_expression_that_would_run_for_ages_is_stopped():
    ten = "[" + ",".join(["0"] * 10) + "]"
    nested = f"{ten}.all(a, {ten}.all(b, {ten}.all(c, {ten}.all(d, {ten}.all(e, {ten}.all(f, true))))))"
    response = run_cel(nested)
    assert (response.continue_, response.code) == (False, 3)
    assert response.message.endswith("operation cancelled: actual cost limit exceeded")


def test_an_expression_that_builds_a_huge_string_is_stopped():
    doubling = "'x'"
    for name in "abcdefghijklmnopqrstuvwxyz":
        doubling = f"[{doubling}].map({name}, {name} + {name})[0]"
    response = run_cel(overlays=[{"key": "v", "expression": doubling}])
    assert (response.continue_, response.code) == (False, 3)
    assert "value over 1048576 elements" in response.message

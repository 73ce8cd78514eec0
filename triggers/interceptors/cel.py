"""The CEL core interceptor: `filter` must be true, `overlays` become extensions (tektoncd/triggers:
pkg/interceptors/cel/cel.go), evaluated with cel-python and the functions of celfunctions.py.

Bounded where upstream is not: an expression over 16 KiB is refused, evaluation stops after a step budget, and a
string or list an expression builds stops at a million elements, so no expression can hold a worker.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from triggers.interceptors import (
    FAILED_PRECONDITION,
    INTERNAL,
    INVALID_ARGUMENT,
    InterceptorRequest,
    InterceptorResponse,
    fail,
    proceed,
)
from triggers.interceptors.celfunctions import cel_value, functions, plain
from triggers.interceptors.common import CoreServices, SecretError, read_secret
from triggers.jsonbody import BodyError, decode_object

MAX_EXPRESSION_CHARS = 16 * 1024
MAX_STEPS = 20_000  # cel-python visits about 10,000 nodes a second: a bound of about 2 s


class CostLimitExceeded(Exception):
    """An expression that took more evaluation steps than the budget."""


class CELFailure(Exception):
    """An expression that does not parse or fails to evaluate; the message is upstream's wording."""


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import celpy  # building its grammar takes a moment: only when a CEL interceptor first runs

    return celpy.Environment()


@functools.lru_cache(maxsize=512)
def _compile(expression: str) -> Any:
    import celpy

    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CELFailure(
            f"failed to parse expression {_go_quote(expression[:80])}...: over {MAX_EXPRESSION_CHARS} characters"
        )
    try:
        return _environment().compile(expression)
    except celpy.CELParseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CELFailure(f"failed to parse expression {_go_quote(expression)}: {first}") from None


def _budgeted_runner() -> type:
    """An interpreted runner whose evaluators share one step budget (macros get sub-evaluators)."""
    from celpy import InterpretedRunner
    from celpy.evaluation import Evaluator

    class BudgetEvaluator(Evaluator):
        def __init__(self, ast: Any, activation: Any, budget: list[int]) -> None:
            super().__init__(ast, activation)
            self.budget = budget

        def visit(self, tree: Any) -> Any:
            self.budget[0] -= 1
            if self.budget[0] < 0:
                raise CostLimitExceeded()
            return super().visit(tree)

        def sub_evaluator(self, ast: Any) -> Any:
            return BudgetEvaluator(ast, self.activation, self.budget)

    class BudgetRunner(InterpretedRunner):
        def evaluate(self, context: Any) -> Any:
            return BudgetEvaluator(self.ast, self.new_activation(), [MAX_STEPS]).evaluate(context)

    return BudgetRunner


_RUNNER: list[type] = []


def evaluate(expression: str, context: dict[str, Any], extra: dict[str, Callable[..., Any]]) -> Any:
    """The value of an expression; CELFailure worded as upstream's `evaluate` (parse, check or eval error)."""
    import celpy

    ast = _compile(expression)
    if not _RUNNER:
        _RUNNER.append(_budgeted_runner())
    runner = _RUNNER[0](_environment(), ast, extra)
    try:
        return runner.evaluate(context)
    except CostLimitExceeded:
        raise CELFailure(
            f"expression {_go_quote(expression)} failed to evaluate: operation cancelled: actual cost limit exceeded"
        ) from None
    except celpy.CELEvalError as exc:
        raise CELFailure(f"expression {_go_quote(expression)} failed to evaluate: {_detail(exc)}") from None
    except RecursionError:
        raise CELFailure(f"expression {_go_quote(expression)} failed to evaluate: nested too deeply") from None
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as exc:
        raise CELFailure(f"expression {_go_quote(expression)} failed to evaluate: {exc}") from None


def _detail(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, ValueError) and cause.args:
        return str(cause.args[0])
    text = str(exc.args[0] if exc.args else exc)
    if text == "no such overload" or "undeclared reference" in text:
        return text.split(" (in activation", 1)[0]
    return text.split(" (in activation", 1)[0][:300]


def cel(request: InterceptorRequest, services: CoreServices) -> InterceptorResponse:
    """Process one request as the cel ClusterInterceptor does."""
    params = request.interceptor_params
    flt = params.get("filter") or ""
    overlays = params.get("overlays") or []
    if (
        not isinstance(flt, str)
        or not isinstance(overlays, list)
        or not all(
            isinstance(o, dict) and isinstance(o.get("key", ""), str) and isinstance(o.get("expression", ""), str)
            for o in overlays
        )
    ):
        return fail(INVALID_ARGUMENT, "failed to parse interceptor params: filter must be a string, overlays a list")
    try:
        body = decode_object(request.body.encode() if request.body else b"{}") or {}
    except BodyError as exc:
        return fail(INVALID_ARGUMENT, f"error making the evaluation context: failed to parse the body as JSON: {exc}")
    namespace = request.context.namespace

    def read(name: str, key: str) -> bytes:
        try:
            return read_secret(services, namespace, {"secretName": name, "secretKey": key})
        except SecretError as exc:
            raise LookupError(str(exc)) from None

    context = {
        "body": cel_value(body),
        "header": cel_value({k: list(v) for k, v in request.header.items()}),
        "extensions": cel_value(dict(request.extensions)),
        "requestURL": cel_value(request.context.event_url),
    }
    extra = functions(read)
    try:
        if flt and not _is_true(evaluate(flt, context, extra)):
            return fail(FAILED_PRECONDITION, f"expression {flt} did not return true")
        extensions: dict[str, Any] | None = None
        for overlay in overlays:
            value = evaluate(overlay.get("expression", ""), context, extra)
            try:
                converted = plain(value)
            except ValueError as exc:
                return fail(INTERNAL, f"failed to convert overlay result to type: {exc}")
            extensions = extensions or {}
            _set_path(extensions, overlay.get("key", ""), converted)
    except CELFailure as exc:
        return fail(INVALID_ARGUMENT, f"error evaluating cel expression: {exc}")
    return proceed(extensions)


def _is_true(value: Any) -> bool:
    from celpy import celtypes

    return isinstance(value, celtypes.BoolType) and bool(value)


def _set_path(document: dict[str, Any], key: str, value: Any) -> None:
    """sjson.SetRawBytes for a dotted key: `a.b` nests, `\\.` is a literal dot."""
    parts, current = [], ""
    i = 0
    while i < len(key):
        if key[i] == "\\" and i + 1 < len(key):
            current += key[i + 1]
            i += 2
            continue
        if key[i] == ".":
            parts.append(current)
            current = ""
        else:
            current += key[i]
        i += 1
    parts.append(current)
    target = document
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[parts[-1]] = value

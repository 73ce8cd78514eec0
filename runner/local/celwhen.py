"""CEL `when` expressions (`when[].cel`), evaluated with cel-python once variables are substituted (§3.2)."""

from __future__ import annotations

import functools
from typing import Any


class CELError(Exception):
    """A CEL expression that does not parse, fails to evaluate, or is not a boolean."""


@functools.lru_cache(maxsize=256)
def evaluate_cel(expression: str) -> bool:
    """The value of a CEL expression without variables (Tekton substitutes `$(...)` before evaluating)."""
    import celpy  # imported on first use: building its grammar takes a moment

    env = celpy.Environment()
    try:
        program = env.program(env.compile(expression))
        value: Any = program.evaluate({})
    except celpy.CELParseError as exc:
        where = f"{getattr(exc, 'line', None) or 1}:{getattr(exc, 'column', None) or 0}"
        raise CELError(f"ERROR: <input>:{where}: Syntax error: {_first_line(exc)}") from exc
    except celpy.CELEvalError as exc:
        raise CELError(f"ERROR: <input>: {_detail(exc)}") from exc
    if isinstance(value, celpy.CELEvalError):
        raise CELError(f"ERROR: <input>: {_detail(value)}")
    if not isinstance(value, celpy.celtypes.BoolType):
        raise CELError(f"The CEL expression {expression} is not evaluated to a boolean")
    return bool(value)


def _detail(exc: Exception) -> str:
    # cel-python appends its whole activation (every known function) to some messages: not for a condition.
    text = str(exc.args[0] if exc.args else exc)
    return text.split(" (in activation", 1)[0][:300]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def has_cel(expressions: Any) -> bool:
    """Whether any `when` expression of a list is a CEL one."""
    return any(isinstance(e, dict) and "cel" in e for e in expressions or [])

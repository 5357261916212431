"""``visible_if``: a small allowlisted expression language, parsed once, never ``eval``ed.

    tls_enabled == true and mode in ["full", "strict"]
    not (port < 1024) or run_as_root

Python's own parser (``ast.parse(mode="eval")``) reads the text; :func:`parse` then walks the
tree and refuses every node that is not on the allowlist (attribute access, calls,
subscripts, lambdas, comprehensions, f-strings, walrus, arithmetic, ...), naming the
position. :meth:`Expression.evaluate` walks the same tree over a mapping of input values;
nothing is compiled or executed. Written on ``ast`` rather than a parser library because the
grammar is a strict subset of Python's, whose parser is already here and well tested.

Semantics: ``true``/``false`` (any case) are booleans; an input name that is hidden or has no
value is ``null`` (equal only to itself); an ordering comparison between values of different
kinds (a number and a string, anything and ``null``) is false instead of an error, so a
half-filled form never fails; ``x in y`` is membership in a list or a substring of a string
(false otherwise); ``not``, ``and``, ``or`` use truthiness and give booleans.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_LENGTH = 1000  # characters; also bounds the tree's depth below the recursion limit
BOOLEANS = {"true": True, "false": False}
Value = str | int | float | bool | list[Any] | None

_COMPARISONS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
# What a refused node is called in the error message.
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Call: "a function call",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "assignment (:=)",
    ast.BinOp: "arithmetic",
    ast.IfExp: "a conditional expression",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Starred: "unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "a slice",
}


class ExpressionError(ValueError):
    """A refused or malformed expression; ``position`` counts characters from 1."""

    def __init__(self, message: str, position: int):
        super().__init__(f"at {position}: {message}")
        self.reason = message
        self.position = position


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.expr = field(repr=False, compare=False)
    names: frozenset[str] = frozenset()  # the input names it reads

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        return bool(_evaluate(self.tree, values))

    def equality_literals(self) -> list[tuple[str, Any, int]]:
        """(input name, literal, position) for each ``name == literal``, ``!=``, ``in [...]``
        and ``not in [...]``: what the lint checks against the input's type and values."""
        found = []
        text = self.source.strip()
        offset = len(self.source) - len(self.source.lstrip())
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Compare) or len(node.ops) != 1:
                continue
            left, op, right = node.left, node.ops[0], node.comparators[0]
            if isinstance(op, ast.Eq | ast.NotEq) and _is_input(right) and not _is_input(left):
                left, right = right, left  # literal == name
            if not (isinstance(left, ast.Name) and _is_input(left)):
                continue
            if isinstance(op, ast.Eq | ast.NotEq) and _is_literal(right):
                literals = [right]
            elif isinstance(op, ast.In | ast.NotIn) and isinstance(right, ast.List | ast.Tuple):
                literals = list(right.elts)
            else:
                continue
            for literal in literals:
                found.append((left.id, _evaluate(literal, {}), _position(literal, text, offset)))
        return found


def parse(source: str) -> Expression:
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression is required", 1)
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    control = next((i for i, char in enumerate(source) if not char.isprintable()), None)
    if control is not None:  # a newline, a NUL: positions are counted on one line
        raise ExpressionError("one line without control characters", control + 1)
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        offset = len(source) - len(source.lstrip())
        raise ExpressionError(exc.msg or "invalid syntax", (exc.offset or 1) + offset) from None
    except (RecursionError, MemoryError, ValueError):  # e.g. thousands of "(" or a NUL
        raise ExpressionError("too deeply nested or not parseable", 1) from None
    offset = len(source) - len(source.lstrip())
    names: set[str] = set()
    _check(tree, source.strip(), offset, names)
    return Expression(source=source, tree=tree, names=frozenset(names))


def _position(node: ast.AST, text: str, offset: int) -> int:
    # ast gives UTF-8 byte offsets; the message counts characters.
    column = getattr(node, "col_offset", 0)
    return len(text.encode()[:column].decode(errors="ignore")) + offset + 1


def _check(node: ast.expr, text: str, offset: int, names: set[str]) -> None:
    """Refuse anything outside the allowlist; collect the input names read."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.BoolOp):
            stack.extend(item.values)
        elif isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.Not):
            stack.append(item.operand)
        elif isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub | ast.UAdd):
            if not _is_number(item.operand):
                raise ExpressionError("a sign only before a number", _position(item, text, offset))
        elif isinstance(item, ast.Compare):
            for op in item.ops:
                if type(op) not in _COMPARISONS:  # ``is``, ``is not``
                    raise ExpressionError(
                        "only ==, !=, <, <=, >, >=, in, not in compare",
                        _position(item, text, offset),
                    )
            stack.append(item.left)
            stack.extend(item.comparators)
        elif isinstance(item, ast.List | ast.Tuple):
            for element in item.elts:
                if not _is_literal(element):
                    raise ExpressionError(
                        "a list holds only literals", _position(element, text, offset)
                    )
        elif isinstance(item, ast.Constant):
            if not _is_literal(item):
                kind = "null" if item.value is None else type(item.value).__name__
                raise ExpressionError(
                    f"a {kind} literal is not allowed", _position(item, text, offset)
                )
        elif isinstance(item, ast.Name):
            if item.id.lower() not in BOOLEANS:
                names.add(item.id)
        else:
            what = _REFUSED.get(type(item), type(item).__name__)
            raise ExpressionError(f"{what} is not allowed", _position(item, text, offset))


def _is_input(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id.lower() not in BOOLEANS


def _is_number(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | int | float)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _is_number(node.operand)
    if isinstance(node, ast.Name):
        return node.id.lower() in BOOLEANS
    return False


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def safe(left: Any, right: Any) -> bool:
        both_numbers = all(_number_value(v) for v in (left, right))
        both_strings = isinstance(left, str) and isinstance(right, str)
        return bool(compare(left, right)) if both_numbers or both_strings else False

    return safe


def _number_value(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    # true == 1 is false here: a boolean equals only a boolean.
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _contains(left: Any, right: Any) -> bool:
    if isinstance(right, list | tuple):
        return any(_equal(left, item) for item in right)
    if isinstance(right, str) and isinstance(left, str):
        return left in right
    return False


_OPERATIONS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: _equal,
    ast.NotEq: lambda left, right: not _equal(left, right),
    ast.Lt: _ordered(operator.lt),
    ast.LtE: _ordered(operator.le),
    ast.Gt: _ordered(operator.gt),
    ast.GtE: _ordered(operator.ge),
    ast.In: _contains,
    ast.NotIn: lambda left, right: not _contains(left, right),
}


def _evaluate(node: ast.expr, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        results = (bool(_evaluate(value, values)) for value in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, values)
            if not _OPERATIONS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.List | ast.Tuple):
        return [_evaluate(element, values) for element in node.elts]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        lowered = node.id.lower()
        return BOOLEANS[lowered] if lowered in BOOLEANS else values.get(node.id)
    raise ExpressionError("not allowed", 1)  # parse() refused it already; never reached

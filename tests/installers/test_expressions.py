"""visible_if: the allowlist, each refused construct with its position, the semantics."""

import ast
import builtins

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.installers.expressions import MAX_LENGTH, ExpressionError, parse


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("tls == true", {"tls": True}, True),
        ("tls == true", {"tls": False}, False),
        ("tls", {"tls": True}, True),
        ("not tls", {}, True),
        ("mode != 'x'", {"mode": "y"}, True),
        ("mode in ['a', 'b']", {"mode": "b"}, True),
        ("mode not in ['a', 'b']", {"mode": "b"}, False),
        ("'ab' in name", {"name": "xaby"}, True),
        ("port < 1024", {"port": 80}, True),
        ("port <= 80", {"port": 80}, True),
        ("port > 80", {"port": 80}, False),
        ("port >= 80.0", {"port": 80}, True),
        ("1 < port < 100", {"port": 50}, True),
        ("1 < port < 100", {"port": 500}, False),
        ("-1 < n", {"n": 0}, True),
        ("a or b and c", {"a": False, "b": True, "c": False}, False),  # and binds tighter
        ("(a or b) and c", {"a": True, "b": False, "c": False}, False),
        ("not a == 1", {"a": 2}, True),  # not is looser than ==
        ("a == 1 or not b", {"a": 2, "b": False}, True),
        ("True == TRUE", {}, True),
        ("flag == 1", {"flag": True}, False),  # a boolean equals only a boolean
        ("missing == 'x'", {}, False),  # absent is null
        ("missing < 3", {}, False),  # ordering across kinds: false, not an error
        ("name < 3", {"name": "a"}, False),
        ("x in 3", {"x": 3}, False),
    ],
)
def test_evaluation(source, values, expected):
    assert parse(source).evaluate(values) is expected


def test_names_are_the_inputs_read():
    assert parse("a == 1 and (b or not c) and true").names == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("source", "reason", "position"),
    [
        ("a.b", "attribute access", 1),
        ("x == f(1)", "a function call", 6),
        ("x[0]", "a subscript", 1),
        ("lambda: 1", "a lambda", 1),
        ("[i for i in x]", "a comprehension", 1),
        ("{i for i in x}", "a comprehension", 1),
        ("(i for i in x)", "a comprehension", 1),
        ("{i: 1 for i in x}", "a comprehension", 1),
        ("x == f'{y}'", "an f-string", 6),
        ("(y := 1)", "assignment (:=)", 2),
        ("a + 1 == 2", "arithmetic", 1),
        ("1 if a else 2", "a conditional expression", 1),
        ("x == {'a': 1}", "a dict", 6),
        ("x in {1, 2}", "a set", 6),
        ("x is None", "only ==", 1),
        ("x == None", "null literal", 6),
        ("x == b'y'", "bytes literal", 6),
        ("x == ...", "ellipsis literal", 6),
        ("x in [y]", "only literals", 7),
        ("-x < 1", "a sign only before a number", 1),
        ("__import__('os')", "a function call", 1),
        ("a ==", "invalid syntax", None),
        ("x == 1\nand y", "control characters", 7),
        ("", "required", 1),
    ],
)
def test_refused_constructs_name_the_position(source, reason, position):
    with pytest.raises(ExpressionError) as refused:
        parse(source)
    assert reason in refused.value.reason
    if position is not None:
        assert refused.value.position == position
        assert str(refused.value).startswith(f"at {position}: ")


def test_positions_count_characters_not_bytes():
    with pytest.raises(ExpressionError) as refused:
        parse("name == 'é' and f(x)")
    assert refused.value.position == 17


def test_hostile_sizes_are_refused_not_crashing():
    for source in ("(" * 5000, "(" * 900 + "a" + ")" * 99, "not " * 400 + "a", "a" * 2000):
        with pytest.raises(ExpressionError):
            parse(source)
    assert parse("not " * 200 + "a").evaluate({"a": True}) is True
    assert len("x") < MAX_LENGTH


def test_nothing_is_compiled_or_evaluated(monkeypatch):
    """Parsing only builds a tree (compile with PyCF_ONLY_AST, as ast.parse does); no code
    object is made and nothing is eval'ed or exec'ed, in parsing or evaluating."""
    real_compile = builtins.compile

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called")

    def only_ast(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & ast.PyCF_ONLY_AST, "compile() to code"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", only_ast)
    parsed = parse("a == 1 and b in ['x']")
    monkeypatch.setattr(builtins, "compile", refuse)
    assert parsed.evaluate({"a": 1, "b": "x"}) is True
    assert parse.__module__ == "portal.installers.expressions"


names = st.sampled_from(["a", "b", "c"])
literals = st.one_of(
    st.integers(-1000, 1000),
    st.booleans(),
    st.text(alphabet="xyz", max_size=3),
)


def _literal(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


@st.composite
def expressions(draw, depth=3):
    """Random expressions of the language with a Python twin that computes the same."""
    if depth == 0 or draw(st.booleans()):
        name, value = draw(names), draw(literals)
        op = draw(st.sampled_from(["==", "!="]))
        return f"{name} {op} {_literal(value)}"
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not ({draw(expressions(depth=depth - 1))})"
    left, right = draw(expressions(depth=depth - 1)), draw(expressions(depth=depth - 1))
    return f"({left}) {kind} ({right})"


def _python_twin(source, values):
    """The same expression read by Python's own semantics, for type-consistent values."""
    tree = ast.parse(source.replace("true", "True").replace("false", "False"), mode="eval")

    def walk(node):
        if isinstance(node, ast.BoolOp):
            results = [walk(v) for v in node.values]
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.UnaryOp):
            return not walk(node.operand)
        if isinstance(node, ast.Compare):
            left, right = walk(node.left), walk(node.comparators[0])
            same = type(left) is type(right) and left == right
            return same if isinstance(node.ops[0], ast.Eq) else not same
        if isinstance(node, ast.Constant):
            return node.value
        return values[node.id]

    return walk(tree.body)


@given(expressions(), st.fixed_dictionaries({"a": literals, "b": literals, "c": literals}))
def test_random_expressions_agree_with_a_reference(source, values):
    parsed = parse(source)
    assert parsed.names <= {"a", "b", "c"}
    assert parsed.evaluate(values) is _python_twin(source, values)


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_with_a_position(source):
    try:
        parsed = parse(source)
    except ExpressionError as exc:
        assert exc.position >= 1
    else:
        assert isinstance(parsed.evaluate({}), bool)

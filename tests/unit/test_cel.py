"""engine.cel: compile, evaluate, error classification, Kubernetes library functions.

Table-driven: each case is an expression, the variables, and the expected value or the
expected error class. The library's error texts that `classify` relies on are pinned
by the error-class cases, so an upgrade of cel-expr-python that rewords them fails here.
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from typing import Any

import pytest

from engine.cel import VARIABLES, Bindings, bind, compile_expression
from engine.cel.adapter import Failure, classify
from engine.errors import CelBug, CelError, CelLimitExceeded, CelMissingData, CompileError, Where

WHERE = Where(rule_set="team-defaults", rule="owner-label", field="condition")

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
    "spec": {"replicas": 3, "paused": None, "template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.25",
         "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}}},
        {"name": "sidecar", "image": "envoy:1.0"},
    ]}}},
}
OBJ = {"object": DEPLOYMENT, "params": {"team": "platform", "max": "1Gi"},
       "context": {"teamConfig": None}, "ruleSet": {"name": "rs", "namespace": "team-a"}}


def run(source: str, variables: dict[str, Any] | None = None) -> Any:
    return compile_expression(source, where=WHERE).evaluate(OBJ if variables is None else variables)


CORE = [
    # Kubernetes-style conditions
    ("object.metadata.?labels.?owner.orValue('') == ''", True),
    ("object.?spec.?x.orValue(1)", 1),
    ("object.metadata.labels[?'app'].orValue('none')", "web"),
    ("{'a': 1}[?'k'].orValue(2)", 2),
    ("has(object.spec.replicas) && !has(object.spec.strategy)", True),
    ("object.spec.template.spec.containers.all(c, c.image != '')", True),
    ("object.spec.template.spec.containers.exists(c, c.name == 'sidecar')", True),
    ("object.spec.template.spec.containers.map(c, c.name)", ["app", "sidecar"]),
    ("object.spec.template.spec.containers.filter(c, !has(c.resources)).map(c, c.name)",
     ["sidecar"]),
    ("object.spec.template.spec.containers.exists_one(c, has(c.resources))", True),
    ("object.spec.replicas == 3.0", True),
    ("object.spec.paused == null", True),
    ("params.team + '-' + object.metadata.name", "platform-web"),
    ("ruleSet.name", "rs"),
    ("context.teamConfig == null", True),
    ("oldObject == null && item == null && namespaceObject == null", True),
    ("cel.bind(n, object.metadata.name, n + n)", "webweb"),
    # string extension
    ("'%s has %d replicas'.format([object.metadata.name, object.spec.replicas])",
     "web has 3 replicas"),
    ("'A,B'.lowerAscii().split(',')", ["a", "b"]),
    ("['a', 'b'].join('-')", "a-b"),
    ("'nginx:1.25'.split(':')[1]", "1.25"),
    ("' x '.trim().upperAscii()", "X"),
    ("'abc'.indexOf('c')", 2),
    ("'abc'.matches('^a')", True),
    ("math.greatest(1, 5, 3)", 5),
    ("base64.encode(b'hi')", "aGk="),
    # result conversion
    ("{'a': [dyn(1), dyn(2.5), dyn(null), dyn(true)]}", {"a": [1, 2.5, None, True]}),
    ("b'ab'", b"ab"),
    ("duration('1h30m')", "1h30m0s"),
    ("duration('1.5s')", "1.5s"),
    ("timestamp('2020-01-01T00:00:00.5Z')", "2020-01-01T00:00:00.5Z"),
    ("1u", 1),
    ("type(1) == int", True),
]

QUANTITIES = [
    ("quantity(object.spec.template.spec.containers[0].resources.limits.memory)"
     ".isLessThan(quantity('1Gi'))", True),
    ("quantity('1Gi').isLessThan(quantity(params.max))", False),
    ("quantity('150Mi').isGreaterThan(quantity('100Mi'))", True),
    ("quantity('200M').compareTo(quantity('0.2G'))", 0),
    ("quantity('50M').compareTo(quantity('50Mi'))", -1),
    ("quantity('1Ki') == quantity('1024')", True),
    ("quantity('200M') == quantity('0.2G')", True),
    ("quantity('50k').add(quantity('20k')) == quantity('70k')", True),
    ("quantity('50k').add(20) == quantity('50020')", True),
    ("quantity('50k').sub(20000) == quantity('30k')", True),
    ("quantity('50k').add(20).sub(quantity('100k')).sub(-50000) == quantity('20')", True),
    ("quantity('50k').sub(20000).asApproximateFloat()", 30000.0),
    ("quantity('50k').asInteger()", 50000),
    ("quantity('50000000G').isInteger()", True),
    ("quantity('9999999999999999999999999999999999999G').isInteger()", False),
    ("quantity('1.5').isInteger()", False),
    ("quantity('-1m').sign()", -1),
    ("sign(quantity('0'))", 0),
    ("isQuantity('1.3Gi') && isQuantity('10000k')", True),
    ("isQuantity('200K') || isQuantity('Three') || isQuantity('Mi') || isQuantity('1,3G')",
     False),
    ("quantity('1.5Gi')", "1610612736"),       # results print in canonical DecimalSI
    ("quantity('1500m')", "1500m"),
    ("[quantity('1k'), quantity('1')]", ["1k", "1"]),
]

LISTS = [
    ("[1, 2, 3].isSorted()", True), ("['a', 'b', 'b', 'c'].isSorted()", True),
    ("[2.0, 1.0].isSorted()", False), ("[1].isSorted()", True), ("[].isSorted()", True),
    ("[dyn(1), dyn(2.5)].isSorted()", True),
    ("[1, 3].sum()", 4), ("[1.0, 3.0].sum()", 4.0), ("[].sum()", 0),
    ("[1, 3].min()", 1), ("[1, 3].max()", 3), ("['b', 'a'].min()", "a"), ("[1].min()", 1),
    ("[1, 2, 2, 3].indexOf(2)", 1), ("['a', 'b', 'b', 'c'].lastIndexOf('b')", 2),
    ("[1.0].indexOf(1.1)", -1), ("[].indexOf('string')", -1), ("[1.0].indexOf(1)", 0),
    ("[dyn(true), dyn(1)].indexOf(1)", 1), ("[[1], [2]].indexOf([2])", 1),
    ("[{'a': 1}].indexOf({'a': 1})", 0), ("[b'x'].lastIndexOf(b'x')", 0),
    ("object.spec.template.spec.containers.map(c, c.name).indexOf('sidecar')", 1),
    ("object.spec.template.spec.containers.map(c, c.name).isSorted()", True),
]

URLS = [
    ("url('https://user:pass@example.com:80/path?query=val#fragment').getHost()",
     "example.com:80"),
    ("url('/path').getScheme()", ""), ("url('https://example.com/').getScheme()", "https"),
    ("url('https://example.com/').getHost()", "example.com"),
    ("url('https://[::1]:80/').getHost()", "[::1]:80"),
    ("url('https://[::1]/').getHostname()", "::1"),
    ("url('https://127.0.0.1:80/').getHostname()", "127.0.0.1"),
    ("url('/path').getHost()", ""), ("url('https://example.com:80/').getPort()", "80"),
    ("url('https://example.com/').getPort()", ""),
    ("url('https://example.com/path').getEscapedPath()", "/path"),
    ("url('https://example.com/path with spaces/').getEscapedPath()", "/path%20with%20spaces/"),
    ("url('https://example.com').getEscapedPath()", ""),
    ("url('https://example.com/path?k1=a&k2=b&k2=c').getQuery()",
     {"k1": ["a"], "k2": ["b", "c"]}),
    ("url('https://example.com/path?key with spaces=value with spaces').getQuery()",
     {"key with spaces": ["value with spaces"]}),
    ("url('https://example.com/path?').getQuery()", {}),
    ("isURL('https://user:pass@example.com:80/path?query=val#fragment')", True),
    ("isURL('/absolute-path')", True), ("isURL('https://a:b:c/')", False),
    ("isURL('../relative-path')", False),
    ("url('https://example.com/x') == url('https://example.com/x')", True),
    ("url('https://example.com/x')", "https://example.com/x"),
]

REGEX = [
    ("'abc 123'.find('[0-9]+')", "123"), ("'abc 123'.find('xyz')", ""),
    ("'123 abc 456'.findAll('[0-9]+')", ["123", "456"]),
    ("'123 abc 456'.findAll('[0-9]+', 1)", ["123"]),
    ("'123 abc 456'.findAll('[0-9]+', 0)", []),
    ("'123 abc 456'.findAll('xyz')", []),
    # Go skips an empty match that directly follows a match
    ("'123 abc 456'.findAll('[0-9]*')", ["123", "", "", "", "", "456"]),
    ("object.metadata.name.find('^w.')", "we"),
]


@pytest.mark.parametrize(("source", "expected"), CORE + QUANTITIES + LISTS + URLS + REGEX)
def test_evaluates(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


ERRORS: list[tuple[str, dict[str, Any] | None, type[CelError]]] = [
    # no such key, field on null, index on null, absent lookup: data missing
    ("object.spec.strategy.type == 'x'", None, CelMissingData),
    ("object.spec.paused.x", None, CelMissingData),
    ("object.spec.paused['x']", None, CelMissingData),
    ("context.teamConfig.data.x == 'y'", None, CelMissingData),
    ("context.other.data", None, CelMissingData),
    ("params.x", {}, CelMissingData),
    ("object.?spec.?paused.?x.orValue(1)", None, CelMissingData),
    ("object.spec.template.spec.containers[5].name", None, CelMissingData),
    # the expression is wrong for the data
    ("object.spec.replicas / 0 > 1", None, CelBug),
    ("object.spec.replicas % 0", None, CelBug),
    ("int(object.metadata.name) > 1", None, CelBug),
    ("object.metadata.name < 1", None, CelBug),
    ("object.metadata.labels + 1", None, CelBug),
    ("object.spec.replicas.size()", None, CelBug),
    ("9223372036854775807 + object.spec.replicas", None, CelBug),
    ("'a'.matches(object.metadata.name + '(')", None, CelBug),
    ("timestamp(object.metadata.name)", None, CelBug),
    ("optional.none().value()", None, CelBug),
    ("dyn(object.metadata.labels[?'nope'])", None, CelBug),
    # library functions
    ("quantity('200K')", None, CelBug),
    ("quantity('1.5').asInteger()", None, CelBug),
    ("object.metadata.name.isLessThan(quantity('1'))", None, CelBug),
    ("quantity(object.spec.replicas)", None, CelBug),
    ("url('../relative-path')", None, CelBug),
    ("url('https://a:b:c/')", None, CelBug),
    ("object.metadata.name.getHost()", None, CelBug),
    ("[].min()", None, CelBug),
    ("[dyn(1), dyn('a')].isSorted()", None, CelBug),
    ("[dyn(1), dyn(2.0)].sum()", None, CelBug),
    ("[9223372036854775807, 1].sum()", None, CelBug),
    ("'a'.find(object.metadata.name + '(')", None, CelBug),
    ("'a'.findAll(object.metadata.name + '[')", None, CelBug),
    # fixed limits of the runtime
    ("object.items.all(x, x >= 0)", {"object": {"items": list(range(10_001))}},
     CelLimitExceeded),
    ("object.items.map(x, object.items.map(y, y))", {"object": {"items": list(range(200))}},
     CelLimitExceeded),
]


@pytest.mark.parametrize(("source", "variables", "error"), ERRORS)
def test_errors(source: str, variables: dict[str, Any] | None, error: type[CelError]) -> None:
    with pytest.raises(error) as raised:
        run(source, variables)
    assert type(raised.value) is error
    assert raised.value.where == WHERE
    message = str(raised.value)
    assert "rule set 'team-defaults'" in message and "rule 'owner-label'" in message
    assert "field condition" in message


def test_iteration_budget_is_just_under_ten_thousand() -> None:
    program = compile_expression("object.items.all(x, x >= 0)", where=WHERE)
    assert program.evaluate({"object": {"items": list(range(9_999))}}) is True
    with pytest.raises(CelLimitExceeded, match="fewer than 10,000"):
        program.evaluate({"object": {"items": list(range(10_000))}})


COMPILE_ERRORS = [
    ("1 +", "line 1, column 4: Syntax error"),
    ("foo(1)", "undeclared reference to 'foo'"),
    ("unknownVariable == 1", "undeclared reference to 'unknownVariable'"),
    ("'a' + 1", "found no matching overload for '_+_' applied to '(string, int)'"),
    ("object.metadata.name.find(1)", "found no matching overload for 'find'"),
    ("quantity(1)", "found no matching overload for 'quantity'"),
    ("+".join(["1"] * 33), "recursion depth of 32"),
    ("[" * 40 + "]" * 40, "recursion limit exceeded"),
    ("object.?spec", "gives an optional value"),
    # Kubernetes' compile-time checks: regex, duration and timestamp literals, homogeneous
    # list and map literals
    ("'a'.matches('(')", "matches(): invalid regular expression '(' (RE2 syntax): missing )"),
    ("'a'.find('(?<=a)b')", "find(): invalid regular expression '(?<=a)b'"),
    ("'a'.findAll('[')", "findAll(): invalid regular expression '['"),
    ("duration('1x') > duration('1s')", "invalid duration literal '1x'"),
    ("timestamp('yesterday') < timestamp('2020-01-01T00:00:00Z')",
     "invalid timestamp literal 'yesterday'"),
    ("[1, 2.5].isSorted()", "expected type 'int' but found 'double'"),
    ("[object.metadata.name, 'a'].size() == 2", "expected type 'dyn' but found 'string'"),
    ("{'a': 1, 'b': 'x'}.size() == 2", "expected type 'int' but found 'string'"),
    ("x" * 5001, "is 5001 characters long; the limit is 5000"),
]


@pytest.mark.parametrize(("source", "fragment"), COMPILE_ERRORS)
def test_compile_errors(source: str, fragment: str) -> None:
    with pytest.raises(CompileError) as raised:
        compile_expression(source, where=WHERE)
    message = str(raised.value)
    assert fragment in message
    assert message.startswith("rule set 'team-defaults', rule 'owner-label', field condition:")


def test_length_limits() -> None:
    long_but_fine = "true" + " && true" * 600
    assert compile_expression(long_but_fine, where=WHERE, max_length=10_000).source
    with pytest.raises(CompileError, match="limit is 100"):
        compile_expression("'" + "a" * 200 + "'", where=WHERE, max_length=100)
    with pytest.raises(CompileError, match="limit is 100000"):  # the library's own ceiling
        compile_expression("'" + "a" * 100_001 + "'", where=WHERE, max_length=10**9)


def test_unbound_variables_are_null() -> None:
    assert VARIABLES == ("object", "oldObject", "params", "namespaceObject", "context",
                         "ruleSet", "item", "request", "variables")
    program = compile_expression(" && ".join(f"{name} == null" for name in VARIABLES),
                                 where=WHERE)
    assert program.evaluate({}) is True


def test_bindings_are_shared_between_programs() -> None:
    bound = bind(OBJ)
    assert isinstance(bound, Bindings)
    programs = [compile_expression(source, where=WHERE) for source, _ in CORE[:10]]
    for program, (_, expected) in zip(programs, CORE[:10], strict=True):
        assert program.evaluate(bound) == expected
        assert program.evaluate(bound) == expected


def test_input_the_library_rejects_is_repaired() -> None:
    program = compile_expression("object.a[1] + object.b.x", where=WHERE)
    odd = {"object": OrderedDict(a=(1, 2), b=OrderedDict(x=3))}
    assert program.evaluate(odd) == 5
    stamp = compile_expression("object.when", where=WHERE)
    moment = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert stamp.evaluate({"object": {"when": moment}}) == "2024-01-02T03:04:05Z"
    assert stamp.evaluate({"object": {"when": datetime.date(2024, 1, 2)}}) == "2024-01-02"
    assert stamp.evaluate({"object": {"when": {1}}}) == [1]
    with pytest.raises(CelBug, match="Non-CEL value type"):
        stamp.evaluate({"object": {"when": object()}})


def test_programs_are_shared_by_threads() -> None:
    program = compile_expression("object.n * 2", where=WHERE)
    results: list[int] = []

    def work(n: int) -> None:
        results.extend(program.evaluate({"object": {"n": n}}) for _ in range(200))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(results)) == [0, 2, 4, 6]


def test_program_is_immutable() -> None:
    program = compile_expression("1", where=WHERE)
    with pytest.raises(AttributeError):
        program.source = "2"  # type: ignore[misc]


@pytest.mark.parametrize(("message", "failure"), [
    ('NOT_FOUND: Key not found in map : "x"', Failure.MISSING_DATA),
    ("INVALID_ARGUMENT: Applying SELECT to non-message type", Failure.MISSING_DATA),
    ("INVALID_ARGUMENT: Invalid container type: 'null_type'", Failure.MISSING_DATA),
    ("UNKNOWN: No matching overloads found : _[?_]", Failure.MISSING_DATA),
    ("UNKNOWN: Index error: index=5 size=1", Failure.MISSING_DATA),
    ("INTERNAL: Iteration budget exceeded [INTERNAL]", Failure.LIMIT),
    ("INVALID_ARGUMENT: Non-CEL value type for 'object': collections.OrderedDict.",
     Failure.UNSUPPORTED_INPUT),
    ("INVALID_ARGUMENT: Non-CEL value type for 'Python function 'f'': datetime.", Failure.BUG),
    ("INVALID_ARGUMENT: divide by zero", Failure.BUG),
    ("UNKNOWN: No matching overloads found : _+_(map, int64)", Failure.BUG),
    ("OUT_OF_RANGE: integer overflow", Failure.BUG),
    ("Unable to convert function return value to a Python type!", Failure.OPTIONAL_RESULT),
    ("OUT_OF_RANGE: edict limit: findAll('a') over a 9-character string stopped",
     Failure.COST),
])
def test_classify(message: str, failure: Failure) -> None:
    assert classify(message) is failure


def test_other_variable_sets() -> None:
    program = compile_expression("self.size() > 1 && self.all(x, x > 0)", where=WHERE,
                                 variables=("self",))
    assert program.variables == ("self",)
    assert program.evaluate({"self": [1, 2]}) is True
    assert program.evaluate(bind({"self": [1, 2]}, names=("self",))) is True
    assert program.evaluate(bind({"self": [0, 2]})) is False  # rebound to its own names
    with pytest.raises(CompileError, match="undeclared reference to 'object'"):
        compile_expression("object == null", where=WHERE, variables=("self",))

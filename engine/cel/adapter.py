"""The one door to cel-expr-python: environment, compile, evaluate, error classification.

Rule loading calls `compile_expression` once per CEL field (``condition``, ``forEach``)
when a rule set loads; the evaluator calls `Program.evaluate` for every trigger. Nothing
else in Edict imports ``cel_expr_python``, so the library can be swapped here.

- **One environment** for every program, built on first use: the variables of
  `VARIABLES` (all ``dyn``), the string, optional, bindings, math and encoders
  extensions, and the Kubernetes functions of `engine.cel.library`. A caller with
  another variable set (CRD validation rules see only ``self``) gets one environment
  per set, cached the same way.
- **Compile** type-checks; every failure becomes `CompileError` naming the rule (via
  `Where`), with the position and the library's message. Expressions longer than
  ``max_length`` are refused before the library sees them. The library's fixed limits
  (100,000 characters, nesting depth 32) surface as `CompileError` too.
- **Evaluate** hands the caller's plain dicts to the library without copying the
  values. The library converts a whole variable into its own values the first time an
  expression reads it, and that conversion dominates (below), so each program binds
  only what it reads: `engine.cel.reads` finds, at compile time, the paths an
  expression can read of each variable (`Program.reads` for ``object``) and cuts the
  values down to them, a few dicts along those paths and the original values at their
  ends. `bind` once per trigger: programs that read the same share one activation, so
  its conversions are paid once; after `PROJECTIONS_PER_BINDING` distinct projections a
  binding serves its other programs the whole variables. Input the library refuses
  (tuples, dict subclasses, datetimes from YAML) is repaired with
  `engine.cel.values.plain` and retried once, so well-formed input pays nothing for
  that safety net. Unbound variables are ``null``. Results come back as plain Python.
- **Errors**: the library reports a runtime failure as an error value holding
  ``"<STATUS>: <text>"`` (or raises, for the iteration budget), and nothing else — no
  codes or types per cause. `classify` is the single place that reads that text and
  decides between `CelMissingData`, `CelBug` and `CelLimitExceeded`; nothing else in
  Edict may look at CEL error messages.

Measured cost (2-core x86_64, CPython 3.11, a 2-container Deployment dict): converting
the whole object takes about 13 µs for that Deployment (~300 µs once it holds a
500-item list), evaluating a simple condition on converted values 1.2 to 1.6 µs, making
an activation 1 to 2 µs. So ``object.spec.replicas > 1`` on a fresh `bind` takes about
6 µs with the object cut down to ``spec.replicas`` (16 µs when it converted the whole
object), and 1.4 µs for each further program of that binding reading the same; an
expression that reads the containers still pays for converting them (20 µs), one that
uses ``object`` whole the full 16 µs. Compiling takes 100 to 400 µs, about 60 µs of it
decoding the syntax tree to find the reads.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_encoders, ext_math, ext_optional, ext_strings

from engine.cel import library
from engine.cel.reads import View, analyse, view_of, whole_view
from engine.cel.values import plain, to_python
from engine.errors import CelBug, CelError, CelLimitExceeded, CelMissingData, CompileError, Where

VARIABLES: tuple[str, ...] = (
    "object", "oldObject", "params", "namespaceObject", "context", "ruleSet", "item", "request")
LIBRARY_MAX_LENGTH = 100_000
"""The library's own limit on expression size, in code points."""

PROJECTIONS_PER_BINDING = 2
"""Distinct projections one `Bindings` makes before its other programs share the whole
variables. A projection costs about 3 µs plus converting what it holds, so a binding
that serves many programs reading different parts is better off converting once; one
trigger mostly meets one or two programs before it changes (measured on the offline
bench, where 2 and 4 are as fast and 2 bounds the worst case closer to the old cost)."""
_SCALARS = (bool, int, float, type(None))
_ERROR = cel.Type.ERROR
_POSITION = re.compile(r"ERROR: <input>:(-?\d+):(-?\d+): ([^\n]*)")


@functools.cache
def _environment(names: tuple[str, ...] = VARIABLES) -> Any:
    return cel.NewEnv(
        variables=dict.fromkeys(names, cel.Type.DYN),
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional(),
                    ext_bindings.ExtBindings(), ext_math.ExtMath(),
                    ext_encoders.ExtEncoders(), library.extension()])


class Failure(enum.Enum):
    """What a runtime error from the library means for Edict."""

    MISSING_DATA = "missing data"
    BUG = "bug"
    LIMIT = "limit"
    UNSUPPORTED_INPUT = "unsupported input"  # the caller's data, not the rule: repaired
    OPTIONAL_RESULT = "optional result"


_ERROR_TYPES: dict[Failure, type[CelError]] = {
    Failure.MISSING_DATA: CelMissingData, Failure.BUG: CelBug,
    Failure.LIMIT: CelLimitExceeded, Failure.UNSUPPORTED_INPUT: CelBug,
    Failure.OPTIONAL_RESULT: CelBug}
_EXPLANATIONS = {
    Failure.MISSING_DATA: "the data it reads is not there",
    Failure.LIMIT: "it hit a fixed limit of the CEL runtime (fewer than 10,000 comprehension "
                   "iterations per evaluation): iterate over less data or split the rule",
    Failure.OPTIONAL_RESULT: "the result is an optional value, end the expression with "
                             ".orValue(default)"}


def classify(message: str) -> Failure:
    """Decide what a library error message means. The only reader of CEL error text.

    cel-expr-python 0.1.3 gives nothing but the message (a status code and text), so
    matching its wording is unavoidable; it is confined here and pinned by tests.
    Field selection on ``null`` cannot be told apart from selection on a number or
    string (same message), so both count as missing data, the common case in
    Kubernetes objects; likewise an index past the end of a list.
    """
    if "Iteration budget exceeded" in message or "recursion limit" in message:
        return Failure.LIMIT
    if "Unable to convert function return value" in message:
        return Failure.OPTIONAL_RESULT  # the one value plain_value() cannot give
    if "Non-CEL value type for '" in message and "Python function" not in message:
        return Failure.UNSUPPORTED_INPUT
    if (message.startswith("NOT_FOUND:")
            or "Applying SELECT to non-message type" in message
            or "Invalid container type: 'null_type'" in message
            or "No matching overloads found : _[?_]" in message
            or "Index error: index=" in message
            or "No value with name" in message):
        return Failure.MISSING_DATA
    return Failure.BUG


@dataclass(frozen=True, eq=False)
class Bindings:
    """Variables bound once and shared by several programs: one trigger, many rules.

    Each program binds only what it reads of the variables (its `View`); programs that
    read the same share one activation here, in which the library converts each value on
    first use, so the first of them pays for the conversion and the rest do not. The
    bound objects must not be changed afterwards (cached objects are read-only anyway).
    """

    variables: Mapping[str, Any]
    names: tuple[str, ...] = VARIABLES
    _activations: dict[View, Any] = field(repr=False, default_factory=dict)


def bind(variables: Mapping[str, Any], *, names: tuple[str, ...] = VARIABLES) -> Bindings:
    """Bind values for any of `names` (the others are null) for repeated evaluation."""
    return Bindings({**dict.fromkeys(names), **variables}, names)


@dataclass(frozen=True, kw_only=True, eq=False)
class Program:
    """A compiled, type-checked CEL expression; immutable and safe to share by threads."""

    source: str
    where: Where = field(default_factory=Where)
    variables: tuple[str, ...] = VARIABLES
    _expression: Any = field(repr=False, default=None)
    _view: View | None = field(repr=False, default=None)

    @property
    def reads(self) -> frozenset[tuple[str, ...]] | None:
        """The paths under ``object`` this expression can read (None: all of it).

        A path brings everything below it; an empty set means ``object`` is not read.
        """
        return self._reads("object")

    @property
    def reads_variables(self) -> frozenset[str]:
        """Which of `VARIABLES` the expression mentions at all."""
        view = self._seen()
        return frozenset(view.reads).intersection(VARIABLES)

    def evaluate(self, variables: Mapping[str, Any] | Bindings) -> Any:
        """Evaluate with JSON-like values for any of `VARIABLES`; missing ones are null.

        Returns plain Python values; raises only `CelMissingData`, `CelBug` or
        `CelLimitExceeded`. Pass a `bind` result to share conversions between programs.
        """
        try:
            return self._run(self._activation(variables))
        except _InputRejected:
            given = variables.variables if isinstance(variables, Bindings) else variables
            try:
                repaired = {name: plain(value) for name, value in given.items()}
            except TypeError as error:  # a map key plain() turns into a list (a tuple)
                raise self._error(Failure.BUG, f"unsupported input: {error}") from None
            try:
                return self._run(self._activation(repaired))
            except _InputRejected as rejected:
                raise self._error(Failure.BUG, rejected.message) from None

    def reads_of(self, name: str) -> frozenset[tuple[str, ...]] | None:
        """The paths under variable `name` it can read (None: all; empty: not read)."""
        return self._reads(name)

    def _reads(self, name: str) -> frozenset[tuple[str, ...]] | None:
        return self._seen().reads.get(name, frozenset())

    def _seen(self) -> View:
        if self._view is None:  # built by hand (tests compare with this): reads everything
            return whole_view(self.variables)
        return self._view

    def _activation(self, variables: Mapping[str, Any] | Bindings) -> Any:
        """The library's activation of what this program reads of `variables`."""
        view = self._seen()
        if not isinstance(variables, Bindings):
            return _environment(self.variables).Activation(view.project(variables))
        activations = variables._activations
        activation = activations.get(view)
        if activation is None and len(activations) >= PROJECTIONS_PER_BINDING:
            view = whole_view(self.variables)
            activation = activations.get(view)
        if activation is None:
            activation = _environment(self.variables).Activation(
                view.project(variables.variables))
            activations[view] = activation
        return activation

    def _run(self, activation: Any) -> Any:
        try:
            result = self._expression.eval(activation)
            value = result.plain_value()
        except MemoryError:
            raise self._error(Failure.LIMIT, "out of memory") from None
        except Exception as error:  # RuntimeError from the binding, TypeError for optionals
            raise self._failure(str(error)) from None
        if type(value) in _SCALARS:
            return value
        if type(value) is str and result.type() == _ERROR:
            raise self._failure(value)
        return to_python(value)

    def _failure(self, message: str) -> Exception:
        failure = classify(message)
        if failure is Failure.UNSUPPORTED_INPUT:
            return _InputRejected(message)
        return self._error(failure, message)

    def _error(self, failure: Failure, message: str) -> CelError:
        what = _EXPLANATIONS.get(failure, "the expression does not fit this data")
        if failure is not Failure.OPTIONAL_RESULT:
            what += ": " + _clean(message)
        return _ERROR_TYPES[failure](f"{what} (in {_quote(self.source)})", where=self.where)

class _InputRejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def compile_expression(source: str, *, where: Where, max_length: int = 5000,
                       variables: tuple[str, ...] = VARIABLES) -> Program:
    """Parse and type-check `source` once; raise `CompileError` naming `where`.

    `variables` are the names the expression may use; Edict's rules use `VARIABLES`.
    """
    limit = min(max_length, LIBRARY_MAX_LENGTH)
    if len(source) > limit:
        raise CompileError(f"the CEL expression is {len(source)} characters long; the limit "
                           f"is {limit}: shorten it or split the rule", where=where)
    environment = _environment(tuple(variables))
    try:
        expression = environment.compile(source)
    except Exception as error:
        raise CompileError(_compile_message(str(error), source), where=where) from None
    returns = str(expression.return_type())
    if returns.startswith("optional_type"):
        raise CompileError(f"{_quote(source)} gives an optional value ({returns}); end it "
                           "with .orValue(default) or test it with .hasValue()", where=where)
    names = tuple(variables)
    try:
        serialized = expression.serialize()
    except Exception:  # never seen; without a syntax tree the program reads everything
        serialized = b""
    return Program(source=source, where=where, variables=names, _expression=expression,
                   _view=view_of(names, analyse(serialized, names)))


def _compile_message(message: str, source: str) -> str:
    problems = []
    for line, column, text in _POSITION.findall(message):
        at = f"line {line}, column {column}: " if int(line) > 0 else ""
        if f"{at}{text}" not in problems:
            problems.append(f"{at}{text}")
    detail = "; ".join(problems) or _clean(message)
    if "recursion" in detail or "codepoint limit" in detail:
        detail += " (nesting deeper than 32 or longer than 100,000 characters is refused)"
    return f"CEL expression {_quote(source)} does not compile: {detail}"


def _clean(message: str) -> str:
    """The library's text without its ``STATUS:`` prefix and ``[STATUS]`` echo."""
    text = re.sub(r"\s*\[[A-Z_]+\]$", "", message.strip())
    return re.sub(r"^[A-Z_]+: ", "", text)


def _quote(source: str) -> str:
    return repr(source if len(source) <= 120 else source[:117] + "...")

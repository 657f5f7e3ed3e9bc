"""A compiled CEL program and its evaluation: bind, check, bound the cost, run, classify.

`engine.cel.adapter.compile_expression` makes `Program` values; the evaluator calls
`Program.evaluate` for every trigger, with plain dicts or a `bind` result.

- **Binding**: each program binds only what it reads (`engine.cel.reads`); programs of
  one `Bindings` that read the same share an activation, so the library converts those
  values once. Before an activation is made its values are checked and measured
  (`engine.cel.inputs`, quick bounds first, the exact walk when they do not settle it):
  a NUL character or a lone surrogate (which the library would cut or choke on), data
  too large or too deep, all fail the evaluation.
- **Cost**: with the measured sizes the program's cost is estimated (`engine.cel.cost`,
  cached per size bucket) and an evaluation above `CelLimits.runtime_cost_limit` does
  not start: `CelCostError`. Programs whose worst case at the input limits is already
  within the budget skip this.
- **Running**: input the library refuses (tuples, dict subclasses, datetimes from YAML)
  is repaired with `engine.cel.values.plain` and retried once; results come back as
  plain Python (`engine.cel.values.to_python`).
- **Errors**: the library reports a failure as an error value holding
  ``"<STATUS>: <text>"`` (or raises, for the iteration budget), and nothing else.
  `classify` is the single place that reads that text and decides between
  `CelMissingData`, `CelBug`, `CelLimitExceeded` and `CelCostError`; nothing else in
  Edict may look at CEL error messages.
"""

from __future__ import annotations

import enum
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cel_expr_python import cel

from engine.cel import cost, values
from engine.cel.environment import VARIABLES, environment
from engine.cel.inputs import LEVELS, InputRejected, Sizes, bounds, inspect, plain_measures
from engine.cel.library.declare import LIMIT_PREFIX
from engine.cel.limits import DEFAULT_LIMITS, CelCostError, CelLimits
from engine.cel.quick import SLOW, ItemsQuick, NullCheck, Quick, value_at
from engine.cel.reads import STAND_INS, View, whole_view
from engine.cel.syntax import Node
from engine.cel.values import plain, to_python
from engine.errors import CelBug, CelError, CelLimitExceeded, CelMissingData, Where

PROJECTIONS_PER_BINDING = 2
"""Distinct projections one `Bindings` makes before its other programs share the whole
variables. A projection costs about 3 µs plus converting what it holds, so a binding
that serves many programs reading different parts is better off converting once."""
_SCALARS = (bool, int, float, type(None))
_ERROR = cel.Type.ERROR
_COST_CACHE = 64


class Failure(enum.Enum):
    """What a runtime error from the library means for Edict."""

    MISSING_DATA = "missing data"
    BUG = "bug"
    LIMIT = "limit"
    COST = "cost"
    UNSUPPORTED_INPUT = "unsupported input"  # the caller's data, not the rule: repaired
    OPTIONAL_RESULT = "optional result"


_ERROR_TYPES: dict[Failure, type[CelError]] = {
    Failure.MISSING_DATA: CelMissingData, Failure.BUG: CelBug,
    Failure.LIMIT: CelLimitExceeded, Failure.COST: CelCostError,
    Failure.UNSUPPORTED_INPUT: CelBug, Failure.OPTIONAL_RESULT: CelBug}
_EXPLANATIONS = {
    Failure.MISSING_DATA: "the data it reads is not there",
    Failure.LIMIT: "it hit a fixed limit of the CEL runtime (fewer than 10,000 comprehension "
                   "iterations per evaluation): iterate over less data or split the rule",
    Failure.COST: "it would do more work than allowed",
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
    if LIMIT_PREFIX in message:
        return Failure.COST
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
    _activations: dict[Any, Any] = field(repr=False, default_factory=dict)


def bind(variables: Mapping[str, Any], *, names: tuple[str, ...] = VARIABLES) -> Bindings:
    """Bind values for any of `names` (the others are null) for repeated evaluation."""
    return Bindings({**dict.fromkeys(names), **variables}, names)


@dataclass(frozen=True)
class _Bound:
    """An activation with the sizes of what it holds, or why it could not be made."""

    activation: Any = None
    sizes: Sizes = field(default_factory=Sizes)
    rejected: InputRejected | None = None
    read: Mapping[str, Any] = field(default_factory=dict)  # to measure exactly if needed


@dataclass(frozen=True, kw_only=True, eq=False)
class Program:
    """A compiled, type-checked, cost-bounded CEL expression; immutable, shared by threads.

    `cost` is the static estimate (on the reference object of `limits`); `worst` is the
    estimate with every data value as large as allowed (when within the runtime budget,
    evaluations need no cost check).
    """

    source: str
    where: Where = field(default_factory=Where)
    variables: tuple[str, ...] = VARIABLES
    limits: CelLimits = DEFAULT_LIMITS
    cost: float = 0.0
    worst: float = 0.0
    _expression: Any = field(repr=False, default=None)
    _view: View | None = field(repr=False, default=None)
    _tree: Node | None = field(repr=False, default=None)
    _types: Mapping[int, str] = field(repr=False, default_factory=dict)
    _costs: dict[tuple[int, ...], float] = field(repr=False, default_factory=dict)
    # the largest sizes estimated to fit, replaced whole (threads read it without a lock)
    _accepted: list[tuple[int, ...]] = field(repr=False, default_factory=lambda: [()])
    _quick: Quick | None = field(repr=False, default=None)  # engine.cel.quick
    _null_check: NullCheck | None = field(repr=False, default=None)  # engine.cel.quick
    _filter: ItemsQuick | None = field(repr=False, default=None)  # engine.cel.quick
    # whether the view holds a stand-in at the null check's path (`reads.stand_in`), and
    # then, per type of the value found there, whether the program takes its stand-in
    _null_present: bool = field(repr=False, default=False)
    _stand_ins: dict[type, bool] = field(repr=False, default_factory=dict)

    @property
    def reads(self) -> frozenset[tuple[str, ...]] | None:
        """The paths under ``object`` this expression can read (None: all of it).

        A path brings everything below it; an empty set means ``object`` is not read.
        """
        return self._seen().reads.get("object", frozenset())

    @property
    def reads_variables(self) -> frozenset[str]:
        """Which of `VARIABLES` the expression mentions at all."""
        return frozenset(self._seen().reads).intersection(VARIABLES)

    def reads_of(self, name: str) -> frozenset[tuple[str, ...]] | None:
        """The paths under variable `name` it can read (None: all; empty: not read)."""
        return self._seen().reads.get(name, frozenset())

    def evaluate(self, variables: Mapping[str, Any] | Bindings) -> Any:
        """Evaluate with JSON-like values for any of `VARIABLES`; missing ones are null.

        Returns plain Python values; raises only `CelError` subclasses:
        `CelMissingData`, `CelBug`, `CelLimitExceeded` (or its `CelCostError`). Pass a
        `bind` result to share conversions between programs.
        """
        bound = self._bound(variables)
        try:
            return self._run(bound)
        except _InputRejected:
            given = variables.variables if isinstance(variables, Bindings) else variables
            try:
                repaired = {name: plain(value) for name, value in given.items()}
            except TypeError as error:  # a map key plain() turns into a list (a tuple)
                raise self._error(Failure.BUG, f"unsupported input: {error}") from None
            try:
                return self._run(self._bind(repaired, self._seen()))
            except _InputRejected as rejected:
                raise self._error(Failure.BUG, rejected.message) from None

    def quick(self, variables: Mapping[str, Any]) -> Any:
        """The value for plain `variables` when the expression is one of the quick forms
        and the data the plain case (`engine.cel.quick`); `SLOW` otherwise, and then
        `evaluate` decides. Never raises."""
        check = self._null_check
        if check is not None:
            found = value_at(variables, check)
            if type(found) is dict or type(found) is list:
                # the quick closure of `<path> != null` refuses a map or a list (it
                # compares scalars only): it would give `SLOW`, so it is not run
                return self._null_answer(variables, check, type(found))
        value = SLOW if self._quick is None else self._quick(variables)
        if value is SLOW and check is not None and self._null_present:
            # the program binds a stand-in there, made from the value's type alone
            return self._null_answer(variables, check, type(value_at(variables, check)))
        return value

    def _null_answer(self, variables: Mapping[str, Any], check: NullCheck, kind: type
                     ) -> Any:
        """`quick`'s answer for a null check whose path holds a value of type `kind`: when
        the program binds a stand-in there (made from the type alone), whether one of that
        type fits; otherwise (a map or a list) not null, once the data is bound as the
        program would bind it (same projection, checks and cost bound)."""
        if self._null_present:
            if kind not in STAND_INS:
                return SLOW
            fits = self._stand_ins.get(kind)
            if fits is None:
                fits = self._stand_ins[kind] = self._accepts(variables)
            return (not check[2]) if fits else SLOW
        return (not check[2]) if self._accepts(variables) else SLOW

    def quick_items(self, variables: Mapping[str, Any]) -> Any:
        """For ``<path>.filter(x, <quick condition>)`` (`quick.filter_of`): the items it
        keeps, the very values of the data, when the program would bind the data and run
        (`_accepts`); `SLOW` otherwise. They equal `evaluate`'s list, but its maps come
        from the library with their keys in another order: a caller uses them only where
        that order cannot show (engine.evaluate.writers reads scalars of them). Never
        raises."""
        found = self.quick_items_measured(variables)
        return SLOW if found is None else found[0]

    def quick_items_measured(self, variables: Mapping[str, Any], *,
                             known: Known | None = None) -> tuple[list[Any], Measures] | None:
        """`quick_items` with upper bounds of `inputs.plain_measures` of what the program
        read (None: `SLOW`). `known`: such bounds the caller vouches for (the data is
        plain, and no deeper than `Known.depth`) — an item writer that made the list
        from data this program accepted —; when they settle that the program would
        start, the data is not walked again; when they do not, it is."""
        if self._filter is None:
            return None
        items = self._filter(variables)
        if items is SLOW:
            return None
        if known is not None and self._accepts_known(known):
            return items, known.measures
        measures = self._accepting(variables)
        return None if measures is None else (items, measures)

    def reads_only(self, name: str, path: tuple[str, ...]) -> bool:
        """Whether the program reads exactly `path` of variable `name` and nothing else
        (what `_accepts` measures is then that path's value, under a chain of maps)."""
        return dict(self._seen().reads) == {name: frozenset({path})}

    def _accepts(self, variables: Mapping[str, Any]) -> bool:
        """Whether `evaluate` would bind `variables` and start, as `_bind` and `_run`
        decide (the projection checked and measured, the cost within the budget), on
        plain data (`inputs.plain_measures`: nothing the library would refuse or repair).
        The cost is estimated on upper bounds of the sizes (first against the largest
        already accepted, on a tuple), then on the exact ones."""
        return self._accepting(variables) is not None

    def _accepts_known(self, known: Known) -> bool:
        """`_accepts` on data the caller vouches is plain within `known`: what
        `plain_measures` would refuse, checked on those bounds (the count of values
        bounds the walk's tally of containers twice over), then the cost on them. False
        means only: not settled so."""
        limits = self.limits
        limit = limits.runtime_cost_limit
        longest, items, count, chars = known.measures
        if (known.depth > limits.max_depth - 1 or longest >= limits.max_string_length
                or items >= limits.max_list_length or 2 * count > limit / cost.CONVERT):
            return False
        if self.worst <= limit or self._tree is None:
            return True
        accepted = self._accepted[0]
        if accepted and all(map(operator.le, known.measures + (count, chars) * LEVELS,
                                accepted)):
            return True
        return self._fits(Sizes(longest, items, count, chars, ((count, chars),) * LEVELS,
                                exact=False))

    def _accepting(self, variables: Mapping[str, Any]) -> Measures | None:
        """`_accepts`, giving the measures of what the program reads when it accepts."""
        view = self._seen()
        read = view.read(variables)
        limit = self.limits.runtime_cost_limit
        measures = plain_measures(read, self.limits, max_values=limit / cost.CONVERT)
        if measures is None:
            return None
        if self.worst <= limit or self._tree is None:
            return measures  # as `_fits` answers for any sizes
        accepted = self._accepted[0]
        count, chars = measures[2], measures[3]
        if accepted and all(map(operator.le, measures + (count, chars) * LEVELS, accepted)):
            return measures  # `_fits`' own first test, on `Sizes.flat` of these bounds
        sizes = Sizes(*measures, ((count, chars),) * LEVELS, exact=False)
        if self._fits(sizes):
            return measures
        values = limit / cost.CONVERT
        try:
            return measures if self._fits(inspect(read, self.limits, max_values=values)
                                          ) else None
        except InputRejected:
            return None

    def _seen(self) -> View:
        if self._view is None:  # built by hand (tests compare with this): reads everything
            return whole_view(self.variables)
        return self._view

    def _bound(self, variables: Mapping[str, Any] | Bindings) -> _Bound:
        view = self._seen()
        if not isinstance(variables, Bindings):
            return self._bind(variables, view)
        activations = variables._activations
        key: Any = view if self.limits is DEFAULT_LIMITS else (view, self.limits)
        found = activations.get(key)
        if found is None and len(activations) >= PROJECTIONS_PER_BINDING and not view.present:
            view = whole_view(self.variables)
            key = view if self.limits is DEFAULT_LIMITS else (view, self.limits)
            found = activations.get(key)
        if found is None:
            found = self._bind(variables.variables, view)
            activations[key] = found
        return found

    def _bind(self, variables: Mapping[str, Any], view: View) -> _Bound:
        projected = view.project(variables)
        read = {name: projected[name] for name in view.reads if name in projected}
        values = self.limits.runtime_cost_limit / cost.CONVERT
        try:  # the library converts a variable when it is first read: the others stay out
            sizes = (bounds(read, self.limits, max_values=values)
                     or inspect(read, self.limits, max_values=values))
        except InputRejected as rejected:
            return _Bound(rejected=rejected)
        return _Bound(environment(self.variables).Activation(projected), sizes, read=read)

    def _run(self, bound: _Bound) -> Any:
        if bound.rejected is not None:
            rejected = bound.rejected
            failure = (Failure.COST if rejected.cost else Failure.LIMIT if rejected.limit
                       else Failure.BUG)
            raise self._error(failure, f"its input cannot be evaluated: {bound.rejected}")
        if not self._fits(bound.sizes):
            exact = bound.sizes if bound.sizes.exact else inspect(bound.read, self.limits)
            if exact is bound.sizes or not self._fits(exact):  # the quick bounds, if rough
                raise self._cost_error(exact)
        try:
            result = self._expression.eval(bound.activation)
            value = result.plain_value()
        except MemoryError:
            raise self._error(Failure.LIMIT, "out of memory") from None
        except Exception as error:  # RuntimeError from the binding, TypeError for optionals
            raise self._failure(str(error)) from None
        if type(value) in _SCALARS:
            return value
        if type(value) is str and result.type() == _ERROR:
            raise self._failure(value)
        try:
            return to_python(value)
        except values.TaggedTextError as error:
            raise self._error(Failure.BUG, str(error)) from None

    def _fits(self, sizes: Sizes) -> bool:
        """Whether the estimated cost on data of `sizes` is within the runtime budget."""
        limit = self.limits.runtime_cost_limit
        if self.worst <= limit or self._tree is None:
            return True
        accepted = self._accepted[0]
        if accepted and all(map(operator.le, sizes.flat(), accepted)):
            return True  # within sizes already estimated to fit: the estimate only grows
        rounded = _rounded(sizes)
        bucket = rounded.flat()
        estimate = self._costs.get(bucket)
        if estimate is None:
            if len(self._costs) >= _COST_CACHE:
                self._costs.clear()
            estimate = cost.estimate(self._tree, self.variables, cost.measured_inputs(rounded),
                                     self._types)
            self._costs[bucket] = estimate
        if estimate <= limit:
            if not accepted or all(map(operator.ge, bucket, accepted)):
                self._accepted[0] = bucket
            return True
        return False

    def _cost_error(self, sizes: Sizes) -> CelCostError:
        limit = self.limits.runtime_cost_limit
        estimate = self._costs.get(_rounded(sizes).flat(), math.inf)
        shown = "without bound" if math.isinf(estimate) else f"{estimate:,.0f}"
        return CelCostError(
            f"it would do more work than allowed: its estimated cost on this data is {shown}, "
            f"above the limit of {limit:,} (limit cel.runtime_cost_limit); the data it reads "
            f"holds {sizes.count:,} values, its longest list {sizes.items:,} entries and its "
            f"longest string {sizes.chars:,} characters: read or iterate over less "
            f"(in {_quote(self.source)})", where=self.where)

    def _failure(self, message: str) -> Exception:
        failure = classify(message)
        if failure is Failure.UNSUPPORTED_INPUT:
            return _InputRejected(message)
        return self._error(failure, message)

    def _error(self, failure: Failure, message: str) -> CelError:
        what = _EXPLANATIONS.get(failure, "the expression does not fit this data")
        if failure is not Failure.OPTIONAL_RESULT:
            what += ": " + clean(message)
        return _ERROR_TYPES[failure](f"{what} (in {_quote(self.source)})", where=self.where)


def _rounded(sizes: Sizes) -> Sizes:
    """`sizes` with every measure rounded up by `_bucket`."""
    return Sizes(_bucket(sizes.chars), _bucket(sizes.items), _bucket(sizes.count),
                 _bucket(sizes.text),
                 tuple((_bucket(count), _bucket(text)) for count, text in sizes.levels))


def _bucket(value: int) -> int:
    """`value` rounded up to four significant bits (at least 16): sizes within 12% of
    each other share one estimate."""
    if value <= 16:
        return 16
    shift = value.bit_length() - 4
    return ((value - 1 >> shift) + 1) << shift


Measures = tuple[int, int, int, int]  # what `inputs.plain_measures` gives


@dataclass(frozen=True, slots=True)
class Known:
    """Upper bounds of `inputs.plain_measures` of plain data, vouched for by a caller
    that knows how the data was made (`Program.quick_items_measured`): the longest string
    or key, the longest container, the values, the characters; and the depth of its
    deepest container (the variables' own values at depth 1)."""

    measures: Measures
    depth: int


class _InputRejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def clean(message: str) -> str:
    """The library's text without its ``STATUS:`` prefix, ``[STATUS]`` echo and tags."""
    text = re.sub(r"\s*\[[A-Z_]+\]$", "", values.scrub(message).strip())
    text = re.sub(r"^[A-Z_]+: ", "", text)
    return text.replace(LIMIT_PREFIX, "")


def _quote(source: str) -> str:
    return repr(source if len(source) <= 120 else source[:117] + "...")

"""`edict graph`: which kinds each rule matches, reads, writes and generates — and where
rules set each other off.

A cascade is a rule that generates a kind another rule matches: every child it creates
is a trigger for that rule (which may generate again). A cycle is a ring of cascades
(a rule that generates a kind it matches itself is the smallest): the objects it makes
can make more objects, without end, unless the rules' selectors and conditions stop
them. Lookups are shown as reads: a change to a looked-up object re-evaluates the rule's
triggers, but makes no new object. Mutate and status rules write the kinds they match;
those writes are settled within one evaluation (the fixed point), so they are no
cascade.

Generate rules of one rule set may wait for each other (`after`): shown as "after"
edges from the rule waited for; a ring of them (a after b after a) is flagged, since
none of its rules could ever create a child (`engine.evaluate.order`).

Printed as text (default), Graphviz `dot` or a Mermaid flowchart (`-o mermaid`, which
GitHub renders in Markdown).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    add_limits_argument,
    engine_of,
    error,
    load_rule_sets,
    read_limits,
)
from engine.evaluate.compile import CompiledRule
from engine.evaluate.order import rings
from engine.objects import GVK
from engine.rules.model import Generate, Mutate, StatusAction

DESCRIPTION = """\
Show, for every rule, the kinds it matches, reads (context lookups, the trigger's
Namespace), writes (mutate, status) and generates; the cascades (a generated kind that
triggers other rules) and the cycles among them, flagged. Exit code 1 when there is a
cycle.
"""
FORMATS = ("text", "dot", "mermaid")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "graph", help="what each rule matches, reads, writes and generates; cascades, cycles",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: edict graph -r rules/ -o mermaid")
    parser.add_argument("-r", "--rules", nargs="+", action="extend", required=True,
                        metavar="RULES", help="rule-set files or directories")
    parser.add_argument("-o", "--output", choices=FORMATS, default="text")
    add_limits_argument(parser)


@dataclass(frozen=True)
class Node:
    """One rule and the kinds it touches."""

    name: str  # "rule-set/rule" (namespace/rule-set/rule for a RuleSet)
    matches: tuple[GVK, ...]
    reads: tuple[tuple[GVK, str], ...]  # (kind, how: "context.x" or "namespaceObject")
    writes: tuple[tuple[GVK, str], ...]  # (kind, "mutate" or "status")
    generates: tuple[GVK, ...]
    after: tuple[str, ...] = ()  # nodes whose children must be ready first


@dataclass
class Graph:
    nodes: list[Node]
    # cascades: generator -> (kind, triggered rule)
    cascades: dict[str, list[tuple[GVK, str]]] = field(default_factory=dict)
    cycles: list[list[str]] = field(default_factory=list)
    rings: list[list[str]] = field(default_factory=list)  # of `after`

    @property
    def in_cycle(self) -> set[str]:
        return {name for cycle in [*self.cycles, *self.rings] for name in cycle}


def main(args: argparse.Namespace) -> int:
    limits = read_limits(args.limits)
    loaded = load_rule_sets(args.rules)
    for exc in loaded.errors:
        error(str(exc))
    engine = engine_of(loaded.rule_sets, limits)
    graph = build([rule for compiled in engine.rule_sets for rule in compiled.rules])
    render = {"text": text, "dot": dot, "mermaid": mermaid}[args.output]
    print(render(graph), end="")
    return EXIT_PROBLEMS if graph.cycles or graph.rings or loaded.errors else EXIT_OK


NAMESPACE = GVK("", "v1", "Namespace")


def node_of(rule: CompiledRule) -> Node:
    ref = rule.rule_set.ref
    name = f"{ref.namespace}/{ref.name}/{rule.rule.name}" if ref.namespace else (
        f"{ref.name}/{rule.rule.name}")
    reads = [(lookup.lookup.gvk, lookup.lookup.field)
             for lookup in rule.lookups]
    if rule.rule.match.namespace_selector is not None or "namespaceObject" in _variables(rule):
        reads.append((NAMESPACE, "namespaceObject"))
    action = rule.rule.action
    writes: list[tuple[GVK, str]] = []
    if isinstance(action, Mutate):
        writes = [(kind, "mutate") for kind in rule.rule.match.kinds]
    elif isinstance(action, StatusAction):
        writes = [(kind, "status") for kind in rule.rule.match.kinds]
    generates = rule.generates if isinstance(action, Generate) else ()
    after = tuple(name.rpartition("/")[0] + "/" + other for other in (
        action.after if isinstance(action, Generate) else ()))
    return Node(name, tuple(dict.fromkeys(rule.rule.match.kinds)), tuple(reads),
                tuple(writes), tuple(generates), after)


def _variables(rule: CompiledRule) -> set[str]:
    names: set[str] = set()
    parts: list[Any] = [rule.condition, rule.for_each, rule.template]
    parts += [part for lookup in rule.lookups for part in (lookup.name, lookup.namespace)]
    for part in parts:
        names.update(getattr(part, "reads_variables", ()) or ())
    return names


def build(rules: Sequence[CompiledRule]) -> Graph:
    nodes = [node_of(rule) for rule in rules]
    graph = Graph(nodes)
    for node in nodes:
        for kind in node.generates:
            for other in nodes:
                if kind in other.matches:
                    graph.cascades.setdefault(node.name, []).append((kind, other.name))
    graph.cycles = cycles({name: [target for _, target in targets]
                           for name, targets in graph.cascades.items()})
    graph.rings = rings({node.name: list(node.after) for node in nodes if node.after})
    return graph


def cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one rule, or a rule that triggers
    itself (Tarjan's algorithm, iteratively), each in the order met."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in list(edges):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            name, position = work.pop()
            if position == 0:
                index[name] = low[name] = counter
                counter += 1
                stack.append(name)
                on_stack.add(name)
            targets = edges.get(name, [])
            if position < len(targets):
                work.append((name, position + 1))
                target = targets[position]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[name] = min(low[name], index[target])
                continue
            if low[name] == index[name]:
                component: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == name:
                        break
                if len(component) > 1 or name in edges.get(name, []):
                    found.append(list(reversed(component)))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[name])
    return found


def _kinds(kinds: Iterable[GVK]) -> str:
    return ", ".join(str(k) for k in kinds) or "-"


def text(graph: Graph) -> str:
    lines: list[str] = []
    for node in graph.nodes:
        flag = "  [cycle]" if node.name in graph.in_cycle else ""
        lines.append(f"{node.name}{flag}")
        lines.append(f"  matches:   {_kinds(node.matches)}")
        if node.reads:
            lines.append("  reads:     " + ", ".join(f"{k} ({how})" for k, how in node.reads))
        if node.writes:
            lines.append("  writes:    " + ", ".join(
                f"{k}{' status' if how == 'status' else ''}" for k, how in node.writes))
        if node.generates:
            lines.append(f"  generates: {_kinds(node.generates)}")
        for kind, target in graph.cascades.get(node.name, []):
            lines.append(f"  triggers:  {target} (through {kind})")
        if node.after:
            lines.append(f"  after:     {', '.join(node.after)}")
    lines.append("")
    lines.append("cascades:" + ("" if graph.cascades else " none"))
    for name, targets in graph.cascades.items():
        for kind, target in targets:
            lines.append(f"  {name} -> {kind} -> {target}")
    lines.append("cycles:" + ("" if graph.cycles else " none"))
    for cycle in graph.cycles:
        lines.append("  CYCLE: " + " -> ".join([*cycle, cycle[0]]) +
                     "  (generated objects can trigger more generation without end)")
    if graph.rings:
        lines.append("rings of after:")
    for ring in graph.rings:
        lines.append("  RING: " + " -> ".join([*ring, ring[0]]) +
                     "  (each waits for the next: none of them can create a child)")
    return "\n".join(lines) + "\n"


def _ids(graph: Graph) -> tuple[dict[str, str], dict[GVK, str]]:
    rules = {node.name: f"r{i}" for i, node in enumerate(graph.nodes)}
    kinds: dict[GVK, str] = {}
    for node in graph.nodes:
        for kind in [*node.matches, *(k for k, _ in node.reads), *(k for k, _ in node.writes),
                     *node.generates]:
            kinds.setdefault(kind, f"k{len(kinds)}")
    return rules, kinds


def _edges(graph: Graph) -> list[tuple[str, str, str, str]]:
    """(from, to, label, style): matches (solid), reads (dotted), generates (bold),
    after (dashed, from the rule waited for).

    What a mutate or status rule writes is the kind it matches: said in its box, not
    drawn as an edge back."""
    rules, kinds = _ids(graph)
    out: list[tuple[str, str, str, str]] = []
    for node in graph.nodes:
        rule = rules[node.name]
        out.extend((kinds[k], rule, "matches", "solid") for k in node.matches)
        out.extend((kinds[k], rule, f"read as {how}", "dotted") for k, how in node.reads)
        out.extend((rule, kinds[k], "generates", "bold") for k in node.generates)
        out.extend((rules[before], rule, "before", "dashed") for before in node.after
                   if before in rules)
    return out


def _action(node: Node) -> str:
    if node.generates:
        return "generate"
    return node.writes[0][1] if node.writes else "validate"  # writes nothing


def dot(graph: Graph) -> str:
    rules, kinds = _ids(graph)
    cyclic = graph.in_cycle
    lines = ["digraph edict {", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for kind, ident in kinds.items():
        lines.append(f'  {ident} [shape=ellipse, label="{kind}"];')
    for node in graph.nodes:
        color = ', color=red, fontcolor=red, xlabel="cycle"' if node.name in cyclic else ""
        label = f"{node.name}\\n{_action(node)}"
        lines.append(f'  {rules[node.name]} [shape=box, label="{label}"{color}];')
    for source, target, label, style in _edges(graph):
        lines.append(f'  {source} -> {target} [label="{label}", style={style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def mermaid(graph: Graph) -> str:
    rules, kinds = _ids(graph)
    arrows = {"solid": "-->", "dotted": "-.->", "bold": "==>", "dashed": "-.->"}
    lines = ["flowchart LR"]
    for kind, ident in kinds.items():
        lines.append(f'  {ident}(["{kind}"])')
    for node in graph.nodes:
        cls = ":::cycle" if node.name in graph.in_cycle else ""
        lines.append(f'  {rules[node.name]}["{node.name}<br/><i>{_action(node)}</i>"]{cls}')
    for source, target, label, style in _edges(graph):
        lines.append(f"  {source} {arrows[style]}|{label}| {target}")
    if graph.cycles or graph.rings:
        lines.append("  classDef cycle stroke:#d00,stroke-width:3px,color:#d00")
    return "\n".join(lines) + "\n"

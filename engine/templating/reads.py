"""Which parts of ``object`` a templated string can read, found in its Jinja2 tree.

`compiled.py` calls `object_reads` and `variables` once per distinct templated string
at compile time; `Template.reads` and `Template.reads_variables` are their unions over a
template's strings and keys. The evaluator uses them to skip re-running a rule when
nothing it reads changed, so `object_reads` must never miss a read: it returns a superset
(each path covers everything beneath it) or None for "anything".

A read is a chain of ``.name`` and ``['literal']`` steps from the name ``object``:

- ``object.spec.replicas``, ``object['metadata'].labels`` read those paths, whatever the
  chain then feeds (a filter, a test, a loop, an argument, a ``set``: the whole value at
  the path is then covered);
- a chain ends at any other step: ``object.spec.containers[0].image`` and
  ``object.data[key]`` read ``('spec', 'containers')`` and ``('data',)``;
- a called chain reads its receiver, since a method sees all of it:
  ``object.metadata.labels.get('a')`` reads ``('metadata', 'labels')``;
- ``object`` alone, or with no step it can name (``object | to_json``,
  ``{% set o = object %}``, ``object.items()``), makes the answer None.

Names are not followed through assignments: ``{% set object = params %}`` only makes the
answer larger, never smaller. A path may end in a name the value does not have as a key
(``object.spec.items`` finds a dict method when ``spec`` has no ``items`` key) or run
through a value that is not a mapping; the reader must treat a change *at or above* a read
path, as well as beneath it, as a change to what the template reads.
"""

from __future__ import annotations

from jinja2 import meta, nodes

from engine.templating.environment import ENV

Path = tuple[str, ...]

ROOT = "object"


class _Untraceable(Exception):
    """``object`` is used whole: the template may read any part of it."""


def object_reads(tree: nodes.Template, root: str = ROOT) -> frozenset[Path] | None:
    """The paths under ``object`` (or the variable `root`) that rendering `tree` can read,
    or None for all of it."""
    found: set[Path] = set()
    try:
        _visit(tree, found, root)
    except _Untraceable:
        return None
    return frozenset(found)


def variables(tree: nodes.Template) -> frozenset[str]:
    """The names `tree` reads from its variables (and the globals, such as ``omit``).

    Jinja2's own analysis of what its generated code resolves from the context (names the
    template sets before using them are not included), plus the globals it uses, which
    that analysis leaves out although a variable of the same name would hide them.
    """
    names = meta.find_undeclared_variables(tree)
    names.update(node.name for node in tree.find_all(nodes.Name)
                 if node.ctx == "load" and node.name in ENV.globals)
    return frozenset(names)


def _visit(node: nodes.Node, found: set[Path], root: str) -> None:
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr | nodes.Getitem):
        callee = node.node
        _visit(callee.node, found, root)  # the receiver, whole: the method may read all of it
        if isinstance(callee, nodes.Getitem):
            _visit(callee.arg, found, root)
        arguments: list[nodes.Node] = [*node.args, *node.kwargs]
        arguments += [extra for extra in (node.dyn_args, node.dyn_kwargs) if extra is not None]
        for argument in arguments:
            _visit(argument, found, root)
        return
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        _visit_chain(node, found, root)
        return
    if isinstance(node, nodes.Name) and node.name == root and node.ctx == "load":
        raise _Untraceable
    if isinstance(node, nodes.NSRef) and node.name == root:
        raise _Untraceable
    for child in node.iter_child_nodes():
        _visit(child, found, root)


def _visit_chain(node: nodes.Getattr | nodes.Getitem, found: set[Path], root: str) -> None:
    steps: list[str] = []  # outermost first
    current: nodes.Node = node
    while isinstance(current, nodes.Getattr | nodes.Getitem):
        if isinstance(current, nodes.Getattr):
            steps.append(current.attr)
        elif isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str):
            steps.append(current.arg.value)
        else:
            # a step it cannot name: everything below it is read, whole
            _visit(current.arg, found, root)
            steps.clear()
        current = current.node
    if isinstance(current, nodes.Name) and current.name == root and current.ctx == "load":
        if not steps:
            raise _Untraceable
        found.add(tuple(reversed(steps)))
        return
    _visit(current, found, root)

"""Generate templates with literal keys, made into children directly instead of rendered.

`run.run_generate` asks `maker_of` for a generate rule's `ChildMaker` (made once per
compiled rule). A rule gets one when its template is literal keys over scalar
constants and templated strings (`Template.shape`: no list, no templated key, no
null), it does not `clone`, and its `metadata` is a map whose labels and annotations,
if given, are maps too, with neither ``ownerReferences`` nor the owned-fields
annotation (the stamp and the record own those). Per rendering, `ChildMaker.make`
renders only the templated strings, builds the child from the shape — what `render`
gives for such a template — and stamps it (`children.stamp_with`, with the rule's labels
and the trigger's facts computed once per trigger, not per child). It declines (None)
when a rendered value is not a scalar (a map, a list, null, ``omit``): the rendering is
then rendered and stamped generically.

Planning a child that does not exist yet, `children.plan` asks `ChildMaker.created` for
the child laid onto nothing with its owned-fields record. Children a maker stamps for
one schema differ only in values: the same keys everywhere (the template's, the stamp's
labels and annotation, the namespace when there is one, the ownerReference when the
trigger has a uid), so `lay` walks the same way and the record names the same fields
but for the ownerReference item, named by the trigger's uid. The first child of each
such structure is laid generically (`lay`, `owned.encode`); what is learned is the
record's text around that item and the order `lay` gives the item's keys, and it is kept
only when the child built from it equals the generic one. The next children of the
same structure are laid from it: their values, the item's keys reordered, the record's
text with their uid's token. tests/unit/test_makers.py checks on random templates,
triggers, schemas and worlds that plans and outcomes equal the generic path's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

from engine.errors import Where
from engine.evaluate import children
from engine.evaluate.children import Made, TriggerFacts
from engine.evaluate.compile import CompiledRule
from engine.evaluate.world import World
from engine.evaluate.writers import shape_leaves
from engine.objects import GVK, Obj, ObjectKey
from engine.patching import owned
from engine.patching.lay import lay
from engine.rules.model import Generate
from engine.schemas import Node
from engine.templating import Constant, Leaf, Shape, Template

_SCALARS = (str, int, float, bool)
_STRUCTURES = 32  # structures a maker remembers how to lay (schemas refreshed, scopes)
# what a maker learned of one structure: the record's text before and after the
# ownerReference's token, and the order of the item's keys (None: no ownerReference)
_Learned = tuple[str, str, tuple[str, ...] | None]


class ChildMaker:
    """One generate template's shape, made into stamped children (thread-safe: what it
    learns is only ever added, whole, to a dict)."""

    __slots__ = ("_laid", "_render", "gvk", "labels", "leaves", "rule", "shape", "template")

    def __init__(self, rule: CompiledRule, template: Template, shape: Shape, gvk: GVK
                 ) -> None:
        self.rule = rule
        self.template = template
        self.shape = shape
        self.gvk = gvk
        self.leaves: tuple[Leaf, ...] = tuple(shape_leaves(shape))
        self._render = template.leaf_renderer(self.leaves)
        self.labels = children.owner_labels(rule.rule_set, rule.rule.name)
        # (id(schema), namespace?, uid?, ownerReference?) -> (schema, learned or None);
        # the schema is kept so that its id stays its own
        self._laid: dict[tuple[int, bool, bool, bool], tuple[Node | None, _Learned | None]] = {}

    def make(self, values: Mapping[str, Any], *, trigger: Obj, facts: TriggerFacts,
             world: World, where: Where) -> Made | None:
        """The stamped child of one rendering, or None: render and stamp it generically.
        Raises what rendering and `children.stamp` raise."""
        rendered = self._render(values) if self.leaves else []
        for value in rendered:
            if type(value) not in _SCALARS:
                return None
        child = children.stamp_with(_build(self.shape, iter(rendered)),
                                    rule_set=self.rule.rule_set, labels=self.labels,
                                    trigger=trigger, facts=facts, world=world, where=where,
                                    gvk=self.gvk, fresh=True)
        metadata = child["metadata"]
        key = ObjectKey(self.gvk, str(metadata.get("namespace") or ""),
                        str(metadata.get("name") or ""))
        return Made(child, key, facts.uid, self)

    def created(self, child: Obj, schema: Node | None, uid: str) -> Obj | None:
        """`child` (made by `make`) laid onto nothing, with its owned-fields record: what
        `children.plan` creates. None: lay it generically."""
        metadata = child["metadata"]
        refs = metadata.get("ownerReferences")
        structure = (id(schema), "namespace" in metadata, bool(uid), refs is not None)
        found = self._laid.get(structure)
        if found is None:
            if len(self._laid) >= _STRUCTURES:
                self._laid.clear()
            found = self._laid[structure] = (schema, _learn(child, schema, uid))
        learned = found[1]
        if learned is None:
            return None
        return _lay_as(learned, child, uid)


@functools.lru_cache(maxsize=4096)  # compiled rules are immutable
def maker_of(rule: CompiledRule) -> ChildMaker | None:
    """A maker for a generate rule, when its template allows one."""
    action = rule.rule.action
    template = rule.template
    if not isinstance(action, Generate) or action.clone is not None or template is None:
        return None
    shape = template.shape()
    if shape is None:
        return None
    top = dict(shape)
    api_version, kind, metadata = top.get("apiVersion"), top.get("kind"), top.get("metadata")
    if not isinstance(api_version, Constant) or not isinstance(kind, Constant) or (
            type(api_version.value) is not str or type(kind.value) is not str):
        return None
    if not isinstance(metadata, tuple):
        return None
    fields = dict(metadata)
    if "ownerReferences" in fields or any(
            name in fields and not isinstance(fields[name], tuple)
            for name in ("labels", "annotations")):
        return None
    if children.OWNED_ANNOTATION in dict(fields.get("annotations", ())):
        return None
    return ChildMaker(rule, template, shape, GVK.of(api_version.value, kind.value))


def _build(shape: Shape, values: Iterator[Any]) -> dict[str, Any]:
    """What `Template.render` gives for the shape, once its leaves rendered to scalars."""
    out: dict[str, Any] = {}
    for key, child in shape:
        if isinstance(child, tuple):
            out[key] = _build(child, values)
        elif isinstance(child, Constant):
            out[key] = child.value
        else:
            out[key] = next(values)
    return out


def _uid_token(uid: str) -> str:
    """`owned.token` of the ownerReference item a trigger with this uid names (its key
    is its uid): ``k:{"uid":"..."}``, as `owned` writes it (sorted, compact JSON)."""
    return 'k:{"uid":' + encode_basestring_ascii(uid) + "}"


def _learn(child: Obj, schema: Node | None, uid: str) -> _Learned | None:
    """What laying `child` teaches about the children of its structure; None: lay each
    of them generically."""
    fast = lay(child, schema=schema, skip=[children.OWNED_PATH])
    if fast is None:
        return None
    laid, record = fast
    text = owned.encode(record)
    refs = laid["metadata"].get("ownerReferences")
    learned: _Learned
    if refs is None:
        learned = (text, "", None)
    else:
        encoded = encode_basestring_ascii(_uid_token(uid))
        fields = record.get("f:metadata", {}).get("f:ownerReferences")
        if len(refs) != 1 or fields != {_uid_token(uid): {}} or text.count(encoded) != 1:
            return None
        head, tail = text.split(encoded)
        learned = (head, tail, tuple(refs[0]))
    made = _lay_as(learned, child, uid)
    return learned if made is not None and _same(made, children.with_record(laid, record)
                                                  ) else None


def _lay_as(learned: _Learned, child: Obj, uid: str) -> Obj | None:
    """`child` laid with what was learned of its structure; None: lay it generically."""
    head, tail, order = learned
    metadata = child["metadata"]
    laid_metadata = dict(metadata)
    if order is None:
        text = head
    else:
        owner = metadata["ownerReferences"][0]
        for value in owner.values():
            if type(value) not in _SCALARS:
                return None  # lay would drop a null (or decline): its call
        laid_metadata["ownerReferences"] = [{k: owner[k] for k in order}]
        text = head + encode_basestring_ascii(_uid_token(uid)) + tail
    laid_metadata["annotations"] = {**metadata["annotations"],
                                    children.OWNED_ANNOTATION: text}
    laid = dict(child)
    laid["metadata"] = laid_metadata
    return laid


def _same(a: Any, b: Any) -> bool:
    """Equal, with the keys of every map in the same order."""
    if type(a) is dict and type(b) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) is list and type(b) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b

"""The code Jinja2 generates for Edict's templates, with the checks it must call.

`environment.EdictEnvironment` compiles every template with `CheckedCodeGenerator`:
Jinja2's own generator, except that ``a ~ b`` calls the environment's size-checked
``checked_concat``, every ``{% for %}`` iterates through ``environment.counted`` (one
operation of the rendering's budget per item), and the right side of every comparison
and every sliced value goes through ``environment.charged`` (its size is charged:
``x in big_list`` and ``big_list[1:]`` cost what they walk). Nothing else changes.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame


class CheckedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a size-checked join instead of Jinja2's unchecked one, charges
    every loop iteration and the right-hand side of every comparison to the budget."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Jinja2 allows no new node types: the loop's iterable is marked by identity and
        # wrapped where it is written (`visit`).
        self.__dict__.setdefault("_loop_iterables", set()).add(id(node.iter))
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) in self.__dict__.get("_loop_iterables", ()):
            self.write("environment.counted(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if isinstance(node.arg, nodes.Slice):  # Jinja2 writes a slice directly: charge it
            self.write("environment.charged(")
            self.visit(node.node, frame)
            self.write(")[")
            self.visit(node.arg, frame)
            self.write("]")
            return
        super().visit_Getitem(node, frame)

    def visit_Operand(self, node: nodes.Operand, frame: Frame) -> None:
        # `in`, `==`, `<` on containers and strings cost up to the size of the right side
        self.write(f" {_OPERATORS[node.op]} environment.charged(")
        self.visit(node.expr, frame)
        self.write(")")


_OPERATORS = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<=",
              "in": "in", "notin": "not in"}

"""CEL for Edict: compile once, evaluate many times, Kubernetes library functions included.

The rule loader compiles ``condition`` and ``forEach`` expressions with
`compile_expression`; the evaluator runs the resulting `Program` per trigger. This
package is the only code that imports ``cel_expr_python`` (`engine.cel.adapter`); the
Kubernetes ``quantity()``, ``url()``, list and regex functions live in
`engine.cel.library`, on top of the pure `engine.cel.quantity` and `engine.cel.urls`.
`engine.cel.reads` finds what a program reads of its variables (`Program.reads`), from
the syntax tree `engine.cel.syntax` decodes, so evaluation binds only that.
"""

from engine.cel.adapter import VARIABLES, Bindings, Program, bind, compile_expression

__all__ = ["VARIABLES", "Bindings", "Program", "bind", "compile_expression"]

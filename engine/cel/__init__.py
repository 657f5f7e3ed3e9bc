"""CEL for Edict: Kubernetes' dialect, compiled once, bounded, evaluated many times.

The rule loader compiles ``condition`` and ``forEach`` expressions with
`compile_expression` (limits in `CelLimits`); the evaluator runs the resulting `Program`
per trigger, on plain dicts or a `bind` result. `engine.cel.adapter` is the door to
cel-expr-python (the only package that imports it is this one); the environment
(`engine.cel.environment`) holds the Kubernetes libraries of `engine.cel.library`;
`engine.cel.program` binds, checks and runs; `engine.cel.cost` and `engine.cel.inputs`
bound what an evaluation may do; `engine.regex` is the RE2 helper every regex a rule
can run goes through. The reference and the conformance table are in docs/cel.md.
"""

from engine.cel.adapter import VARIABLES, Bindings, Program, bind, compile_expression
from engine.cel.limits import CelCostCompileError, CelCostError, CelLimits
from engine.cel.quick import SLOW

__all__ = ["SLOW", "VARIABLES", "Bindings", "CelCostCompileError", "CelCostError",
           "CelLimits", "Program", "bind", "compile_expression"]

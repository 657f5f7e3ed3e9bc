"""The cel-expr-python environment Edict compiles in: variables, extensions, Kubernetes' library.

`engine.cel.adapter` compiles with `environment(names)` and deserializes rewritten
expressions into it; `engine.cel.program` makes activations from it. One environment
per variable set (rules use `VARIABLES`; CRD validation rules only ``self``), built on
first use and shared. What it holds:

- the variables, all ``dyn``;
- the library's string, optional, bindings, math and encoders extensions (Python
  objects) and its sets and two-variable comprehension extensions (by name, in the
  config of `engine.cel.library.config_yaml`);
- the declarations of the Kubernetes libraries and of cross-type comparisons (the same
  config) and the runtime functions that serve them (`engine.cel.library`).
"""

from __future__ import annotations

import functools
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_encoders, ext_math, ext_optional, ext_strings

from engine.cel import library

VARIABLES: tuple[str, ...] = (
    "object", "oldObject", "params", "namespaceObject", "context", "ruleSet", "item",
    "request", "variables")


@functools.cache
def _config() -> Any:
    return cel.NewEnvConfigFromYaml(library.config_yaml())


@functools.cache
def environment(names: tuple[str, ...] = VARIABLES) -> Any:
    """The environment with `names` as ``dyn`` variables."""
    return cel.NewEnv(
        config=_config(),
        variables=dict.fromkeys(names, cel.Type.DYN),
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional(),
                    ext_bindings.ExtBindings(), ext_math.ExtMath(),
                    ext_encoders.ExtEncoders(), library.runtime_extension()])


@functools.lru_cache(maxsize=1024)
def literal_error(function: str, text: str) -> str | None:
    """Why ``duration(text)`` or ``timestamp(text)`` fails (None: it does not)."""
    program = _literal_program(function)
    try:
        result = program.eval(environment(("x",)).Activation({"x": text}))
        value = result.plain_value()
    except Exception as error:
        return str(error)
    if result.type() == cel.Type.ERROR:
        return str(value)
    return None


@functools.cache
def _literal_program(function: str) -> Any:
    return environment(("x",)).compile(f"{function}(x)")

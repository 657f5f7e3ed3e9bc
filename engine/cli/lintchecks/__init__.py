"""The checks of `edict lint`, one module per kind of mistake.

`engine.cli.lint` reads the rule-set documents, hands each rule to these checks and
prints what they find. Every check returns `Finding` values (findings.py) that name the
mistake (`unknown-field`, `undefined-param`, ...), the rule set, rule and field, and a
path inside the document, which `positions.py` turns into file:line:column.

- `schema.py`: the CRD schema as the API server enforces it, unknown fields included;
- `expressions.py`: CEL (compiles, variables it reads, `params` keys, `context` names,
  `item`/`index` outside `forEach`, conditions that are always false);
- `templates.py`: the same for Jinja2 templates, plus unknown filters and tests;
- `matching.py`: rules whose `match` and `exclude` leave nothing to match;
- `overlap.py`: rules that can write the same path of the same kind, every pair, every path.
"""

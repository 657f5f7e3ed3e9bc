"""The rule-set controller: compile rule sets, watch what they name, prune, report.

`compile.py` (parse and compile rule sets), `controller.py` (the rebuild loop: compile,
acquire and release watches, sweep), `prune.py` (orphaned children), `apis.py` (the
CRDs of `spec.api`), `status_writer.py` (rule-set status back to the API server).
"""

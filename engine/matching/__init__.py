"""Which objects a rule is about: kinds, namespace and name globs, label selectors.

The evaluator asks `matches()` for every rule the kind index hands it. Pure functions on
the model of `engine.rules.model` and plain-dict objects. A namespaced RuleSet is
confined here: it only ever matches objects of its own namespace, whatever it asks for.
"""

from engine.matching.match import matches, namespace_for, selector_matches

__all__ = ["matches", "namespace_for", "selector_matches"]

"""Offline CRD validation rules fail the way the API server fails them: an evaluation
error (a key that is not there) refuses the object instead of letting it through."""

from __future__ import annotations

from engine.evaluate.validation import check_rule


def test_an_evaluation_error_fails_closed() -> None:
    assert check_rule("self.match.podTemplates == false", {"name": "x"}) is False
    assert check_rule("!has(self.match) || self.match.podTemplates == false",
                      {"name": "x"}) is True


def test_a_rule_that_does_not_compile_offline_is_left_to_the_server() -> None:
    assert check_rule("self.match.", {"name": "x"}) is True

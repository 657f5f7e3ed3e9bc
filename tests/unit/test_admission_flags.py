"""`edict run`'s admission flags: refused before anything connects."""

from __future__ import annotations

import pytest

from engine.cli.main import main
from engine.runtime.admission.webhook_config import Endpoint
from engine.runtime.admission.webhooks import hosts


@pytest.mark.parametrize(("args", "says"), [
    (["--webhook-addr", "127.0.0.1:9443", "--webhook-url", "http://127.0.0.1:9443"],
     "https only"),
    (["--webhook-addr", "127.0.0.1:9443", "--webhook-timeout", "0"], "between 1 and 30"),
    (["--webhook-addr", "nowhere"], "expected HOST:PORT"),
])
def test_bad_webhook_flags_are_usage_errors(args: list[str], says: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--kubeconfig", "/nonexistent", *args]) == 2
    assert says in capsys.readouterr().err


def test_the_certificate_covers_how_the_api_server_calls() -> None:
    assert hosts(Endpoint(url="https://127.0.0.1:9443")) == ["127.0.0.1"]
    assert hosts(Endpoint(url="https://edict.example.com/")) == ["edict.example.com"]
    assert hosts(Endpoint(service_namespace="edict-system")) == [
        "edict-webhook.edict-system.svc", "edict-webhook.edict-system.svc.cluster.local",
        "edict-webhook.edict-system"]

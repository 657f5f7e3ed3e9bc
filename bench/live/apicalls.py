"""What the API server was asked: `apiserver_request_total` before and after a phase.

The engine and the baseline send the same patches; any other request the engine makes
(its informer's list and watch, Events, rule-set status) is server CPU the baseline does
not cause. `ApiCalls.sample()` reads the server's own counter from `/metrics` (by verb
and resource, every client and code summed) and `used()` gives the difference.
"""

from __future__ import annotations

import re

from kubernetes.client import ApiClient

from engine.kube.transport import load_configuration

_SAMPLE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


class ApiCalls:
    def __init__(self, kubeconfig: str) -> None:
        self._api = ApiClient(load_configuration(kubeconfig))

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def sample(self) -> dict[str, float]:
        """Requests served so far, keyed `VERB resource[/subresource]`."""
        method, url, headers, body, _ = self._api.param_serialize(
            "GET", "/metrics", header_params={"Accept": "text/plain"},
            auth_settings=["BearerToken"])
        answer = self._api.call_api(method, url, header_params=headers, body=body)
        out: dict[str, float] = {}
        for line in answer.response.data.decode().splitlines():
            match = _SAMPLE.match(line)
            if not match:
                continue
            labels = dict(_LABEL.findall(match["labels"]))
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            key = f"{labels.get('verb', '?')} {resource}"
            out[key] = out.get(key, 0.0) + float(match["value"])
        return out

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
        """Requests made in between, most first; the benchmark's own /metrics reads and
        keys that did not move are left out."""
        diff = {key: int(value - before.get(key, 0.0)) for key, value in after.items()}
        return dict(sorted(((key, count) for key, count in diff.items() if count > 0
                            and not key.endswith(" ")), key=lambda kv: -kv[1]))

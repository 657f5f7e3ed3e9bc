"""Typed errors for everything the Kubernetes API can answer besides success.

`engine.kube.transport` turns every failed request into one of these, and only here is
it decided which status code or transport failure means what (`api_error` for HTTP
answers, `transport_error` for requests that got no answer). The runtime classifies
with ``isinstance`` and the `retryable` flag, never by reading messages:

* `Conflict` / `Invalid` on a guarded patch: someone changed the object, reconcile again.
* `NotFound`: the object is gone, nothing left to do.
* `retryable` errors (`TooManyRequests`, `ServerError`, `TransportError`, `NotLeader`):
  back off, retry (no sooner than `retry_after`, when the server said).
* everything else (`Forbidden`, `BadRequest`, ...): retrying unchanged will not help.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import urllib3.exceptions as u3

from engine.errors import EdictError


class ApiError(EdictError):
    """The API server refused a request, or could not be reached (status 0)."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int = 0, reason: str = "",
                 details: dict[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        self.status = status
        self.reason = reason
        self.details = details or {}
        self.retry_after = retry_after  # seconds, from a Retry-After header
        super().__init__(message)

    def __str__(self) -> str:
        code = f"{self.status} {self.reason}".strip() if self.status else self.reason
        return f"{code}: {self.message}" if code else self.message


class BadRequest(ApiError):
    """400: the request itself is malformed (e.g. a JSON patch that does not apply)."""


class Unauthorized(ApiError):
    """401: the credentials were not accepted."""


class Forbidden(ApiError):
    """403: RBAC (or an admission plugin) does not allow this for the requesting user."""


class NotFound(ApiError):
    """404: no such object (or no such resource path)."""


class UnknownKind(NotFound):
    """Discovery found no resource for this apiVersion/kind (CRD not installed?)."""


class MethodNotAllowed(ApiError):
    """405: the resource does not support this verb."""


class Conflict(ApiError):
    """409: the object changed since it was read (resourceVersion mismatch)."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists: a create found an object of that name."""


class Gone(ApiError):
    """410: the resourceVersion is too old to list or watch from; list again."""


class UnsupportedMediaType(ApiError):
    """415: the server does not accept this patch type for this resource."""


class Invalid(ApiError):
    """422: the object fails validation, or a JSON patch `test` operation failed.

    The two differ in shape: a validation failure lists its `causes` (field and
    message each, e.g. ``spec.selector: field is immutable``); a failed `test` (our
    resourceVersion guard) lists none.
    """

    @property
    def causes(self) -> list[tuple[str, str]]:
        found = self.details.get("causes") if isinstance(self.details, dict) else None
        return [(str(c.get("field") or ""), str(c.get("message") or ""))
                for c in found or () if isinstance(c, dict)]

    @property
    def refused(self) -> bool:
        """The server will not take this change as it is (retrying the same is useless)."""
        return bool(self.causes)


class TooManyRequests(ApiError):
    """429: the server asks us to slow down (API priority and fairness)."""

    retryable = True


class ServerError(ApiError):
    """5xx: the server (or etcd, a webhook, an aggregated API) failed; retry later."""

    retryable = True


class TransportError(ApiError):
    """No HTTP answer at all: the connection failed or broke off."""

    retryable = True


class Timeout(TransportError):
    """The request timed out on our side (connect or read)."""


class ConnectionFailed(TransportError):
    """The connection could not be opened, or was reset."""


class NotLeader(ApiError):
    """Not sent: this instance no longer holds its leader lease for sure (it could not
    renew it in time, or was paused past it), so another one may be writing now."""

    retryable = True


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def _status_object(body: bytes | str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return {"message": text.strip()[:500]}
    return parsed if isinstance(parsed, dict) else {}


def api_error(status: int, body: bytes | str | dict[str, Any] | None = None, *,
              retry_after: str | None = None) -> ApiError:
    """The one place that maps an HTTP error answer to an error type.

    `body` is the response body, normally a `metav1.Status` object; `retry_after` the
    Retry-After header, if any.
    """
    parsed = _status_object(body)
    reason = str(parsed.get("reason") or "")
    message = str(parsed.get("message") or f"HTTP {status}")
    details = parsed.get("details")
    details = details if isinstance(details, dict) else None
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    if status == 409 and reason == "AlreadyExists":
        kind = AlreadyExists
    return kind(message, status=status, reason=reason, details=details,
                retry_after=_seconds(retry_after))


def transport_error(error: Exception) -> TransportError:
    """The one place that maps a failure to get any answer to an error type."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, u3.MaxRetryError) and error.reason is not None:
        return transport_error(error.reason)
    if isinstance(error, u3.NewConnectionError):  # a ConnectTimeoutError subclass, oddly
        return ConnectionFailed(text, reason="ConnectionFailed")
    if isinstance(error, u3.TimeoutError | TimeoutError):
        return Timeout(text, reason="Timeout")
    return ConnectionFailed(text, reason="ConnectionFailed")


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None

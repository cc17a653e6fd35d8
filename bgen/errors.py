"""One exception tree for bgen; each class knows whose fault it is and its HTTP status.

    BgenError                      base; ``status`` is the HTTP status the server answers with
    ├── BadRequest (400)           the caller sent something wrong; ``field`` names it
    │   ├── NotFound (404)         no such run, iteration or route
    │   ├── MethodNotAllowed (405)
    │   ├── PayloadTooLarge (413)  "N bytes exceeds limit of M"
    │   └── ConfigError (400)      a CLI flag or setting is wrong (CLIs exit 2 with the message)
    ├── PolicyError (422)          the policy misbehaved: failed validation, failed to load,
    │   └── PolicyLoadError        broke the contract; the message is written for the LLM
    ├── ProviderError (502)        the LLM provider failed (network, 5xx, refusal, bad reply)
    │   └── ProviderRequestError   the provider rejected our request (4xx): carries its message
    ├── SimulatorError (500)       the simulator backend failed (a Rust panic arrives as one)
    └── Conflict (409)             the request is valid but not in this state (e.g. run finished)

Messages say what was expected and what came, e.g. ``"iterations: expects an integer in
1..50, actual: 'ten'"``.
"""

from __future__ import annotations


class BgenError(Exception):
    """Base of every error bgen raises on purpose."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class BadRequest(BgenError):
    """The caller's input is wrong; ``field`` names the offending field when there is one."""

    status = 400


class NotFound(BadRequest):
    status = 404


class MethodNotAllowed(BadRequest):
    status = 405

    def __init__(self, message: str, *, allowed: tuple[str, ...] = (), field: str | None = None):
        super().__init__(message, field=field)
        self.allowed = allowed


class PayloadTooLarge(BadRequest):
    status = 413


class RequestTimeout(BadRequest):
    """The request did not arrive in full within the server's wait (RFC 9110 section 15.5.9)."""

    status = 408


class ConfigError(BadRequest):
    """A command-line flag, environment variable or setting is invalid."""


class Conflict(BgenError):
    status = 409


class PolicyError(BgenError):
    """The policy (LLM-written code) is at fault; the message is feedback for the LLM."""

    status = 422

    def __init__(self, message: str, *, lineno: int | None = None, rule: str | None = None,
                 field: str | None = None):
        super().__init__(message, field=field)
        self.lineno = lineno
        self.rule = rule


class PolicyLoadError(PolicyError):
    """The policy source could not be validated, compiled or executed at load time."""


class ProviderError(BgenError):
    """The LLM provider failed after retries (connection, timeout, 429/5xx, unusable reply).

    ``provider_message`` and ``provider_code`` are the provider's own words and error code
    (an HTTP status, ``"overloaded_error"``, …) when it sent an error object.
    """

    status = 502

    def __init__(self, message: str, *, provider_message: str | None = None,
                 provider_code: int | str | None = None, field: str | None = None):
        super().__init__(message, field=field)
        self.provider_message = provider_message
        self.provider_code = provider_code


class ProviderRequestError(ProviderError):
    """The provider rejected the request (4xx); ``provider_message`` is its own words."""

    def __init__(self, message: str, *, http_status: int | None = None,
                 provider_message: str | None = None, provider_code: int | str | None = None):
        super().__init__(message, provider_message=provider_message,
                         provider_code=provider_code if provider_code is not None else http_status)
        self.http_status = http_status


class SimulatorError(BgenError):
    """The simulator backend failed; not the policy's fault."""

    status = 500

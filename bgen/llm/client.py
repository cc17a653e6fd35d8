"""The LLM client: one urllib-only client for two wire APIs and three kinds of endpoint.

Providers (``LLMSettings.provider``):

* ``"anthropic"`` — the Messages API: ``POST <endpoint>`` with ``model``, ``max_tokens``,
  ``system``, ``messages``, ``temperature``; header ``anthropic-version: 2023-06-01``; the reply
  text is the ``text`` blocks of ``content`` joined (``thinking``/``redacted_thinking`` blocks
  are kept apart); ``stop_reason: max_tokens`` marks a cut-off reply; usage is
  ``input_tokens``/``output_tokens``.
* ``"openai"`` — Chat Completions: ``messages`` = system + user, ``max_tokens`` (or
  ``max_completion_tokens`` for models that want it); the reply text is
  ``choices[0].message.content``, a string or a list of chunks whose ``text`` chunks are joined
  (``thinking`` chunks, ``reasoning_content`` and ``reasoning`` are kept apart);
  ``finish_reason: length`` marks a cut-off reply; usage ``prompt_tokens``/``completion_tokens``
  (reasoning included, as the providers count it). Also speaks to local OpenAI-compatible
  servers (Ollama, vLLM, llama.cpp).

The code is found in the text by ``bgen.llm.extract`` (reasoning sections stripped, fenced
blocks chosen by what they define); ``LLMReply.extraction`` says which block and why.

Where the request goes (``endpoint_url``): a URL whose path already ends with the API path
(``/v1/messages``, ``/chat/completions``) is used as given; a path ending in ``/v1`` gets the
rest appended; an empty path gets the whole API path; any other path is a gateway service
endpoint (an LLVPN service URL) and is used as given, which is how the reference addresses
the gateway.

Authentication (``auth``): ``"auto"`` sends ``x-api-key`` to api.anthropic.com, ``x-api-key``
and ``Authorization: Bearer`` to any other Anthropic-speaking endpoint (gateways take the
Bearer token), and ``Authorization: Bearer`` for OpenAI. ``"none"`` sends no key. The key is
read from the environment variable named by ``api_key_env`` and lives only in the request
headers: never in settings, replies, logs, files or events; provider messages that quote it
are redacted.

Failures: a missing key is a ``ConfigError`` before any request (not for ``auth="none"`` or an
OpenAI-compatible server on a loopback address). 408/429/5xx, connection errors, timeouts and
an ``error`` object in a 200 body whose code is 408/429/5xx or whose type is
``overloaded_error``/``rate_limit_error`` (see ``RETRYABLE_ERROR_TYPES``) are retried with
exponential backoff and jitter, honouring ``Retry-After`` (capped); each retry is reported to
``on_retry``; the last failure becomes ``ProviderError`` carrying the provider's message and
code. Any other 4xx, or a non-retryable error object, is ``ProviderRequestError`` with the
provider's own message. A reply stopped at its token limit before any text is a
``ProviderError`` naming the limit and how to raise it.
"""

from __future__ import annotations

import copy
import email.utils
import http.client
import ipaddress
import json
import os
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Mapping

from bgen import defaults as _defaults
from bgen.errors import ConfigError, ProviderError, ProviderRequestError
from bgen.llm.extract import Extraction, extract, extract_code  # noqa: F401  (extract_code: re-exported)

PROVIDERS = ("anthropic", "openai")
AUTH_MODES = ("auto", "x-api-key", "bearer", "both", "none")
ANTHROPIC_VERSION = "2023-06-01"

DEFAULT_MODEL = _defaults.MODELS["anthropic"]
DEFAULT_MAX_TOKENS = _defaults.value("max_tokens")
DEFAULT_TEMPERATURE = _defaults.value("temperature")
DEFAULT_API_KEY_ENV = _defaults.value("api_key_env")
DEFAULT_TIMEOUT_S = _defaults.value("llm_timeout")
DEFAULT_MAX_RETRIES = _defaults.value("llm_retries")
MAX_RETRIES_LIMIT = 20
DEFAULT_BACKOFF_CAP_S = _defaults.value("llm_backoff_cap")
MAX_BACKOFF_CAP_S = 600.0
# What raises the token limit, named in the error of a reply cut off before any text.
MAX_TOKENS_HINT = "raise --max-tokens (iterate) or max_tokens (POST /run)"
# The reference's gateway service endpoints (LLVPN), one per wire API.
DEFAULT_URLS = {
    "anthropic": "https://llvpn.io/v1/service/1bd998cc32e3e5d34b2f09ec104f7439e0498c22358cdf8c1c11a258c3157f84",
    "openai": "https://llvpn.io/v1/service/15695372f78172f965ebf2879254099e1f02a80b3222ea52161dc31eb2cdf7db",
}
OFFICIAL_ANTHROPIC_HOST = "api.anthropic.com"
_API_PATHS = {"anthropic": "/messages", "openai": "/chat/completions"}
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
# Reasoning models take max_completion_tokens and only the default temperature.
_COMPLETION_TOKENS_MODEL = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)
_PROVIDER_MESSAGE_LIMIT = 1000


@dataclass(frozen=True)
class LLMSettings:
    """What to ask and where; holds no secret, so it can be logged and written to run.json."""

    provider: str = "anthropic"
    model: str = DEFAULT_MODEL
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    url: str | None = None                 # None: DEFAULT_URLS[provider]
    api_key_env: str = DEFAULT_API_KEY_ENV
    auth: str = "auto"
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES     # attempts = 1 + max_retries
    backoff_base_s: float = 1.0            # delay before retry n: base * 2**n, jittered
    backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S
    retry_after_cap_s: float = 60.0

    def validated(self) -> "LLMSettings":
        """Return self, or raise ConfigError naming the first bad field."""
        if self.provider not in PROVIDERS:
            raise ConfigError(f"provider: expects one of {', '.join(PROVIDERS)}, actual: {self.provider!r}",
                              field="provider")
        if self.auth not in AUTH_MODES:
            raise ConfigError(f"auth: expects one of {', '.join(AUTH_MODES)}, actual: {self.auth!r}",
                              field="auth")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"model: expects a non-empty string, actual: {self.model!r}", field="model")
        if type(self.max_tokens) is not int or not 1 <= self.max_tokens <= 200_000:
            raise ConfigError(f"max_tokens: expects an integer in 1..200000, actual: {self.max_tokens!r}",
                              field="max_tokens")
        if not isinstance(self.temperature, (int, float)) or not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature: expects a number in 0..2, actual: {self.temperature!r}",
                              field="temperature")
        if not isinstance(self.timeout_s, (int, float)) or not self.timeout_s > 0:
            raise ConfigError(f"timeout_s: expects a positive number, actual: {self.timeout_s!r}",
                              field="timeout_s")
        if type(self.max_retries) is not int or not 0 <= self.max_retries <= MAX_RETRIES_LIMIT:
            raise ConfigError(f"max_retries: expects an integer in 0..{MAX_RETRIES_LIMIT}, "
                              f"actual: {self.max_retries!r}", field="max_retries")
        if isinstance(self.backoff_cap_s, bool) or not isinstance(self.backoff_cap_s, (int, float)) \
                or not 0 < self.backoff_cap_s <= MAX_BACKOFF_CAP_S:
            raise ConfigError(f"backoff_cap_s: expects a number in (0, {MAX_BACKOFF_CAP_S:g}], "
                              f"actual: {self.backoff_cap_s!r}", field="backoff_cap_s")
        endpoint_url(self.provider, self.url)
        return self

    def endpoint(self) -> str:
        return endpoint_url(self.provider, self.url)

    def to_dict(self) -> dict:
        return {**asdict(self), "endpoint": self.endpoint()}


@dataclass(frozen=True)
class LLMReply:
    """One completed call: the text, the extracted code and what it cost."""

    text: str
    code: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_s: float          # whole call, retries and waits included
    attempts: int
    truncated: bool           # the provider stopped at max_tokens
    endpoint: str
    request_fields: tuple = field(default=())   # body fields finally sent (for llm.json)
    reasoning_chars: int = 0  # reasoning text kept out of the code (thinking blocks, reasoning_content)
    stop_reason: str | None = None
    extraction: Extraction | None = None         # which block became ``code`` and why

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("text")
        data.pop("code")
        data["request_fields"] = list(self.request_fields)
        data["extraction"] = None if self.extraction is None else {
            "source": self.extraction.source, "block": self.extraction.block,
            "blocks": self.extraction.blocks, "reason": self.extraction.reason,
            "from_reasoning": self.extraction.from_reasoning,
            "reasoning_stripped": self.extraction.reasoning_stripped}
        return data


@dataclass(frozen=True)
class RetryNotice:
    """One failed attempt about to be retried, for ``LLMClient(on_retry=...)``.

    ``attempt`` is the 1-based number of the attempt that failed, ``attempts`` the most there
    will be (1 + max_retries), ``cause`` what went wrong (the provider's message and code when
    it sent an error object), ``wait_s`` the pause before the next attempt.
    """

    attempt: int
    attempts: int
    cause: str
    wait_s: float
    provider_message: str | None = None
    provider_code: int | str | None = None

    def describe(self, provider: str) -> str:
        return (f"{provider} request attempt {self.attempt} of {self.attempts} failed: "
                f"{self.cause}; retrying in {self.wait_s:.1f} s")


# --- pure helpers ---------------------------------------------------------------------------

def endpoint_url(provider: str, url: str | None) -> str:
    """The URL to POST to, from a base URL, a ``/v1`` URL, a full endpoint or a gateway URL."""
    raw = (url or DEFAULT_URLS.get(provider, "")).strip()
    wrong = ConfigError(f"{provider} URL: expects an http(s) URL, actual: {raw!r}", field="url")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in raw):
        raise wrong      # spaces and control characters: http.client refuses them at send time
    try:
        parts = urllib.parse.urlsplit(raw)
        port = parts.port          # ValueError for a port out of range
        if parts.hostname:
            parts.hostname.encode("idna")    # UnicodeError: an empty or 64-character label
    except (ValueError, UnicodeError):       # an unclosed IPv6 bracket, say
        raise wrong from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0 \
            or parts.netloc.endswith(":"):
        raise wrong
    if "@" in parts.netloc:         # http.client sends no user info: "user:pw@host" is a host
        raise ConfigError(f"{provider} URL: expects no user info (user:password@) in the URL; "
                          f"the key goes in a header (--api-key-env), actual: "
                          f"{parts._replace(netloc='***@' + parts.netloc.rsplit('@', 1)[1]).geturl()!r}",
                          field="url")
    path = parts.path.rstrip("/")
    api_path = _API_PATHS[provider]
    if path.endswith(api_path):
        pass
    elif path.endswith("/v1"):
        path += api_path
    elif path == "":
        path = "/v1" + api_path
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def is_loopback_url(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_required(settings: LLMSettings) -> bool:
    """A key is needed unless auth is "none" or an OpenAI-compatible server runs on loopback."""
    if settings.auth == "none":
        return False
    return not (settings.provider == "openai" and is_loopback_url(settings.endpoint()))


def auth_headers(settings: LLMSettings, key: str | None) -> dict:
    if not key or settings.auth == "none":
        return {}
    mode = settings.auth
    if mode == "auto":
        if settings.provider == "openai":
            mode = "bearer"
        else:
            host = (urllib.parse.urlsplit(settings.endpoint()).hostname or "").lower()
            mode = "x-api-key" if host == OFFICIAL_ANTHROPIC_HOST else "both"
    headers = {}
    if mode in ("x-api-key", "both"):
        headers["x-api-key"] = key
    if mode in ("bearer", "both"):
        headers["Authorization"] = f"Bearer {key}"
    return headers


def uses_completion_tokens(model: str) -> bool:
    return bool(_COMPLETION_TOKENS_MODEL.match(model.strip()))


def build_body(settings: LLMSettings, system: str, user: str, *,
               token_field: str | None = None, send_temperature: bool | None = None) -> dict:
    """The JSON body for ``settings.provider``; the token field/temperature can be overridden."""
    if settings.provider == "anthropic":
        return {
            "model": settings.model,
            "max_tokens": settings.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "temperature": min(float(settings.temperature), 1.0),
        }
    reasoning = uses_completion_tokens(settings.model)
    token_field = token_field or ("max_completion_tokens" if reasoning else "max_tokens")
    send_temperature = (not reasoning) if send_temperature is None else send_temperature
    body = {
        "model": settings.model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        token_field: settings.max_tokens,
    }
    if send_temperature:
        body["temperature"] = float(settings.temperature)
    return body


class ReplyShapeError(ValueError):
    """The provider answered 2xx with a body we cannot use."""


class TokenLimitReached(ReplyShapeError):
    """The reply ended at its token limit before any text came (only reasoning, or nothing)."""


class ErrorInBody(Exception):
    """The body carries the provider's ``error`` object (any HTTP status, 200 included)."""

    def __init__(self, message: str, code: int | str | None):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def retryable(self) -> bool:
        return is_retryable_code(self.code)

    def describe(self) -> str:
        return f"{self.message} ({self.code})" if self.code not in (None, "") else self.message


@dataclass(frozen=True)
class ParsedReply:
    """What a success body holds: the answer text, the reasoning kept apart, usage, why it stopped."""

    text: str
    reasoning: str
    input_tokens: int
    output_tokens: int
    stop_reason: str | None
    truncated: bool          # stopped at the token limit (stop_reason max_tokens / finish_reason length)


# Error codes/types retried like HTTP 429/5xx: Anthropic's overloaded_error (529),
# rate_limit_error (429) and api_error (500); OpenAI's rate_limit_exceeded and server_error.
RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "rate_limit_error", "api_error",
                                   "rate_limit_exceeded", "server_error", "timeout"})
_REASONING_CHUNKS = frozenset({"thinking", "redacted_thinking", "reasoning"})


def is_retryable_code(code) -> bool:
    """True for 408/429/5xx (as an int or a numeric string) and the retryable error types."""
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if type(code) is int:
        return code in RETRYABLE_STATUSES or 500 <= code <= 599
    return isinstance(code, str) and code.lower() in RETRYABLE_ERROR_TYPES


def error_in_body(data) -> ErrorInBody | None:
    """The provider's error object of a decoded body, or None.

    Shapes: ``{"error": {"message", "type"|"code"}}`` (OpenAI, gateways), ``{"type": "error",
    "error": {"type", "message"}}`` (Anthropic), ``{"error": "text"}``, and an error inside
    ``choices[0]`` (a gateway whose upstream failed mid-reply). The code is the HTTP-like
    ``code`` when numeric, else the error ``type``, else the ``code`` string.
    """
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if err is None and isinstance(data.get("choices"), list) and data["choices"] \
            and isinstance(data["choices"][0], dict) and not _has_message(data["choices"][0]):
        err = data["choices"][0].get("error")
    if err is None and data.get("type") == "error":
        err = {"message": data.get("message") or "error without a message"}
    if err is None or err is False:
        return None
    if isinstance(err, str):
        return ErrorInBody(err.strip() or "error without a message", None)
    if not isinstance(err, dict):
        return ErrorInBody(str(err), None)
    message = err.get("message")
    message = message.strip() if isinstance(message, str) and message.strip() else "error without a message"
    code, kind = err.get("code"), err.get("type")
    status = code if type(code) is int or (isinstance(code, str) and code.isdigit()) else None
    if status is not None:
        chosen = int(status)
    elif isinstance(kind, str) and kind:
        chosen = kind
    else:
        chosen = code if isinstance(code, str) and code else None
    return ErrorInBody(message, chosen)


def _has_message(choice: dict) -> bool:
    message = choice.get("message")
    return isinstance(message, dict) and bool(message.get("content"))


def _chunk_texts(content, reasoning: list[str]) -> list[str]:
    """Text chunks of a content list; thinking/reasoning chunks go to ``reasoning``."""
    texts = []
    for chunk in content:
        if isinstance(chunk, str):
            texts.append(chunk)
            continue
        if not isinstance(chunk, dict):
            continue
        kind = chunk.get("type")
        if kind in _REASONING_CHUNKS:
            inner = chunk.get("thinking", chunk.get("reasoning", chunk.get("text")))
            if isinstance(inner, str):
                reasoning.append(inner)
            elif isinstance(inner, list):       # Mistral: thinking is itself a list of text chunks
                reasoning.extend(c.get("text", "") for c in inner if isinstance(c, dict)
                                 and isinstance(c.get("text"), str))
        elif kind in ("text", "output_text", None) and isinstance(chunk.get("text"), str):
            texts.append(chunk["text"])
    return texts


def parse_reply(provider: str, data) -> ParsedReply:
    """The answer of a provider's success body.

    Raises ``ErrorInBody`` when the body is an error object (see ``error_in_body``),
    ``TokenLimitReached`` when it stopped at its token limit with no text, and
    ``ReplyShapeError`` for anything else without text.
    """
    if not isinstance(data, dict):
        raise ReplyShapeError(f"expects a JSON object, actual: {type(data).__name__}")
    failure = error_in_body(data)
    reasoning: list[str] = []
    if provider == "anthropic":
        content = data.get("content")
        if not isinstance(content, list):
            if failure is not None:
                raise failure
            raise ReplyShapeError("expects 'content' to be a list of blocks")
        text = "\n".join(_chunk_texts(content, reasoning))
        stop = data.get("stop_reason")
        truncated = stop == "max_tokens"
        usage = data.get("usage") or {}
        tokens = (_int(usage.get("input_tokens")), _int(usage.get("output_tokens")))
        kinds = sorted({b.get("type") for b in content if isinstance(b, dict)} - {None})
        if not text.strip():
            if truncated:
                raise TokenLimitReached(f"only {' and '.join(kinds) or 'no'} content")
            if stop == "refusal":
                raise ReplyShapeError("the model refused (stop_reason: refusal)")
            raise ReplyShapeError("expects a text block in 'content', actual: "
                                  f"{', '.join(kinds) + ' only' if kinds else 'none'}")
        return ParsedReply(text, "\n".join(reasoning), *tokens, stop, truncated)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if failure is not None:
            raise failure
        raise ReplyShapeError("expects a non-empty 'choices' list")
    if failure is not None and not _has_message(choices[0]):
        raise failure
    message = choices[0].get("message") or {}
    content = message.get("content")
    if isinstance(content, list):
        text = "".join(_chunk_texts(content, reasoning))
    else:
        text = content if isinstance(content, str) else ""
    for name in ("reasoning_content", "reasoning"):
        if isinstance(message.get(name), str):
            reasoning.append(message[name])
    stop = choices[0].get("finish_reason")
    truncated = stop == "length"
    usage = data.get("usage") or {}
    tokens = (_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))
    if not text.strip():
        if truncated:
            what = "only reasoning" if any(r.strip() for r in reasoning) else "no content"
            raise TokenLimitReached(what)
        if message.get("refusal"):
            raise ReplyShapeError(f"the model refused: {message['refusal']}")
        if stop == "content_filter":
            raise ReplyShapeError("the provider's content filter stopped the reply "
                                  "(finish_reason: content_filter)")
        shown = "empty text" if isinstance(content, (str, list)) else \
            ("null" if content is None else type(content).__name__)
        raise ReplyShapeError(f"expects choices[0].message.content to be text, actual: {shown}")
    return ParsedReply(text, "\n".join(reasoning), *tokens, stop, truncated)


def _int(value) -> int:
    return value if type(value) is int and value >= 0 else 0


def provider_error_message(body: bytes) -> str:
    """The provider's own words from an error body (both APIs put them at error.message)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            kind = err.get("type") or err.get("code")
            return f"{err['message']} ({kind})" if isinstance(kind, str) and kind else err["message"]
        if isinstance(err, str):
            return err
        if isinstance(data.get("message"), str):
            return data["message"]
    text = " ".join(text.split())
    if len(text) > _PROVIDER_MESSAGE_LIMIT:
        text = text[:_PROVIDER_MESSAGE_LIMIT] + "…"
    return text or "(empty body)"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(retry: int, settings: LLMSettings, retry_after: float | None,
                  rand: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``retry`` (0-based): Retry-After when given, else jittered 2^n."""
    if retry_after is not None:
        return min(retry_after, settings.retry_after_cap_s)
    ceiling = min(settings.backoff_cap_s, settings.backoff_base_s * (2 ** retry))
    return ceiling / 2 + rand() * ceiling / 2


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        return text.replace(secret, "***")
    return text


def _swap_token_field(body: dict, message: str) -> dict | None:
    """On OpenAI's "use max_completion_tokens instead" (or the reverse), the body to retry with."""
    lowered = message.lower()
    if "max_tokens" not in lowered or "max_completion_tokens" not in lowered:
        return None
    if "max_tokens" in body:
        new = {k: v for k, v in body.items() if k != "max_tokens"}
        new["max_completion_tokens"] = body["max_tokens"]
        return new
    if "max_completion_tokens" in body:
        new = {k: v for k, v in body.items() if k != "max_completion_tokens"}
        new["max_tokens"] = body["max_completion_tokens"]
        return new
    return None


def _drop_temperature(body: dict, message: str) -> dict | None:
    """On "temperature ... unsupported" for a model, the body without it."""
    lowered = message.lower()
    if "temperature" in body and "temperature" in lowered and (
            "unsupported" in lowered or "not support" in lowered or "only the default" in lowered):
        return {k: v for k, v in body.items() if k != "temperature"}
    return None


# --- the client -----------------------------------------------------------------------------

class _Transient(Exception):
    """One failed attempt worth retrying."""

    def __init__(self, description: str, retry_after: float | None = None, *,
                 provider_message: str | None = None, provider_code: int | str | None = None):
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after
        self.provider_message = provider_message
        self.provider_code = provider_code


class LLMClient:
    """Sends one system + user prompt and returns an ``LLMReply``.

    ``sleep`` waits between retries (tests pass a no-op); ``stop_event`` interrupts those waits;
    ``on_retry(RetryNotice)`` is called before each wait (the loop turns it into a ``warning``
    event). Thread-safe: each call builds its own request, so K candidates may call concurrently.
    """

    def __init__(self, settings: LLMSettings, *, api_key: str | None = None,
                 environ: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] | None = None,
                 rand: Callable[[], float] = random.random,
                 stop_event: threading.Event | None = None,
                 on_retry: Callable[[RetryNotice], None] | None = None):
        self.settings = settings.validated()
        self.endpoint = settings.endpoint()
        env = os.environ if environ is None else environ
        key = api_key if api_key is not None else env.get(settings.api_key_env, "")
        key = key.strip() if settings.auth != "none" else ""
        if not key and key_required(settings):
            raise ConfigError(
                f"no API key: set the environment variable {settings.api_key_env} "
                f"(or choose another with --api-key-env)", field="api_key_env")
        # The key lives only in this header dict (never in settings, replies or errors).
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         **auth_headers(settings, key)}
        if settings.provider == "anthropic":
            self._headers["anthropic-version"] = ANTHROPIC_VERSION
        self._key = key or None
        self._stop_event = stop_event
        self._sleep = sleep
        self._rand = rand
        self.on_retry = on_retry
        self._opener = (urllib.request.build_opener(urllib.request.ProxyHandler({}))
                        if is_loopback_url(self.endpoint) else urllib.request.build_opener())

    def __repr__(self) -> str:
        return f"LLMClient({self.settings.provider}, {self.settings.model!r}, {self.endpoint!r})"

    # -- public --------------------------------------------------------------------------
    def derived(self, **changes) -> "LLMClient":
        """A client with the same key and endpoint and ``changes`` to the request settings."""
        settings = replace(self.settings, **changes).validated()
        if settings.endpoint() != self.endpoint or settings.auth != self.settings.auth:
            raise ConfigError("derived client: endpoint and auth cannot change", field="url")
        clone = copy.copy(self)
        clone.settings = settings
        return clone

    def with_retry_hook(self, on_retry: Callable[[RetryNotice], None] | None) -> "LLMClient":
        """A client like this one whose retries are reported to ``on_retry``."""
        clone = copy.copy(self)
        clone.on_retry = on_retry
        return clone

    def generate(self, system: str, user: str) -> LLMReply:
        """One completion; raises ProviderRequestError (4xx, or a non-retryable error object) or
        ProviderError (after retries, or a reply with no usable text)."""
        started = time.monotonic()
        body = build_body(self.settings, system, user)
        provider = self.settings.provider
        adjusted: set[str] = set()
        attempts = 0
        retries = 0
        while True:
            attempts += 1
            try:
                data = self._post(body)
                parsed = self._parse(data)
            except _Transient as failure:
                if retries >= self.settings.max_retries:
                    raise ProviderError(
                        f"{provider} request to {self.endpoint} failed after {attempts} "
                        f"attempt{'' if attempts == 1 else 's'}: {failure.description}",
                        provider_message=failure.provider_message,
                        provider_code=failure.provider_code) from None
                wait = backoff_delay(retries, self.settings, failure.retry_after, self._rand)
                if self.on_retry is not None:
                    self.on_retry(RetryNotice(attempts, self.settings.max_retries + 1,
                                              failure.description, round(wait, 3),
                                              failure.provider_message, failure.provider_code))
                self._wait(wait)
                retries += 1
                continue
            except ProviderRequestError as rejected:
                retry_body = self._adjusted_body(body, rejected, adjusted)
                if retry_body is None:
                    raise
                body = retry_body
                continue
            extraction = extract(parsed.text)
            return LLMReply(
                text=parsed.text, code=extraction.code,
                model=str(data.get("model") or self.settings.model),
                input_tokens=parsed.input_tokens, output_tokens=parsed.output_tokens,
                latency_s=round(time.monotonic() - started, 4), attempts=attempts,
                truncated=parsed.truncated, endpoint=self.endpoint,
                request_fields=tuple(sorted(body)), reasoning_chars=len(parsed.reasoning),
                stop_reason=parsed.stop_reason if isinstance(parsed.stop_reason, str) else None,
                extraction=extraction)

    # -- internals -----------------------------------------------------------------------
    def _parse(self, data) -> ParsedReply:
        """``parse_reply`` with its failures turned into this client's errors."""
        provider = self.settings.provider
        try:
            return parse_reply(provider, data)
        except ErrorInBody as failure:
            message = redact(failure.message, self._key)
            shown = f"{message} ({failure.code})" if failure.code not in (None, "") else message
            if failure.retryable:
                raise _Transient(f"provider error in a 200 reply: {shown}",
                                 provider_message=message, provider_code=failure.code) from None
            status = failure.code if type(failure.code) is int else None
            raise ProviderRequestError(f"{provider} answered with an error: {shown}",
                                       http_status=status, provider_message=message,
                                       provider_code=failure.code) from None
        except TokenLimitReached as error:
            raise ProviderError(
                f"{provider} reply from {self.endpoint} stopped at the token limit (max_tokens "
                f"{self.settings.max_tokens}) with {error} and no text: {MAX_TOKENS_HINT}") from None
        except ReplyShapeError as error:
            raise ProviderError(f"{provider} reply from {self.endpoint} is unusable: {error}") from None

    def _adjusted_body(self, body: dict, rejected: ProviderRequestError, adjusted: set) -> dict | None:
        if self.settings.provider != "openai" or rejected.http_status != 400:
            return None
        message = rejected.provider_message or ""
        if "tokens" not in adjusted:
            new = _swap_token_field(body, message)
            if new is not None:
                adjusted.add("tokens")
                return new
        if "temperature" not in adjusted:
            new = _drop_temperature(body, message)
            if new is not None:
                adjusted.add("temperature")
                return new
        return None

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self._stop_event is not None:
            self._stop_event.wait(seconds)
        else:
            time.sleep(seconds)
        if self._stop_event is not None and self._stop_event.is_set():
            raise ProviderError(f"{self.settings.provider} request stopped while waiting to retry")

    def _post(self, body: dict):
        request = urllib.request.Request(
            self.endpoint, data=json.dumps(body).encode("utf-8"), headers=self._headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.settings.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw_error = _read_quietly(error)
            message = redact(provider_error_message(raw_error), self._key)
            status = error.code
            if status in RETRYABLE_STATUSES or status >= 500:
                raise _Transient(f"HTTP {status}: {message}",
                                 retry_after_seconds(error.headers.get("Retry-After")),
                                 provider_message=message, provider_code=status) from None
            raise ProviderRequestError(
                f"{self.settings.provider} rejected the request (HTTP {status}): {message}",
                http_status=status, provider_message=message) from None
        except (socket.timeout, TimeoutError):
            raise _Transient(f"no reply within {self.settings.timeout_s:g} s") from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise _Transient(f"no reply within {self.settings.timeout_s:g} s") from None
            raise _Transient(f"connection failed: {redact(str(reason), self._key)}") from None
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            raise _Transient(f"connection failed: {type(error).__name__}: "
                             f"{redact(str(error), self._key)}") from None
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            raise ProviderError(
                f"{self.settings.provider} reply from {self.endpoint} is not JSON: "
                f"{redact(raw[:200].decode('utf-8', 'replace'), self._key)!r}") from None


def _read_quietly(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""


def settings_with(settings: LLMSettings, **changes) -> LLMSettings:
    """A copy with ``changes`` applied and validated."""
    return replace(settings, **changes).validated()

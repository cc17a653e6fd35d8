"""Access tokens: who may use the API, without I/O beyond reading the token file.

One shared secret per server (``--token-file PATH`` or ``$BGEN_TOKEN``). Clients send it as
``Authorization: Bearer <token>`` (RFC 6750 §2.1); WebSocket clients may instead put it in the
query (``?token=<token>``, RFC 6750 §2.3) because browsers cannot set headers on a WebSocket.
Comparison is constant-time (``hmac.compare_digest``). Logs never carry it: ``redact`` removes
tokens from any text and ``RedactingFilter`` applies it to every record of the server's log.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from urllib.parse import urlsplit

from bgen.errors import BadRequest, BgenError, ConfigError

TOKEN_ENV = "BGEN_TOKEN"
MIN_TOKEN_CHARS = 16
# Routes any client may use: the health check (uptime monitors) and the dashboard's static
# page, which holds no data and asks the user for the token itself. OPTIONS (CORS preflight,
# which browsers send without credentials) is public on every path.
PUBLIC_PATHS = re.compile(r"/health|/|/static/[^?#]*")
PUBLIC_METHODS = ("GET", "HEAD")

_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*) *", re.I)
_SECRETS = re.compile(r"((?:^|[?&\s])token=)[^&\s\"']+|(Bearer +)[A-Za-z0-9\-._~+/]+=*", re.I)


class Unauthorized(BgenError):
    """No token, or the wrong one (HTTP 401, RFC 9110 §15.5.2)."""

    status = 401


def load_token(token_file: str | None, environ) -> str | None:
    """The server's token: the file's content (stripped) or ``$BGEN_TOKEN``; None if neither.

    Raises ConfigError when the file cannot be read, or the token is shorter than 16
    characters or holds characters a Bearer header cannot carry (RFC 6750 §2.1 b64token).
    """
    source = "--token-file"
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file: cannot read {token_file!r}: {exc}", field="token_file") from None
    else:
        token = (environ.get(TOKEN_ENV) or "").strip() or None
        source = f"${TOKEN_ENV}"
        if token is None:
            return None
    if len(token) < MIN_TOKEN_CHARS or not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token):
        raise ConfigError(f"{source}: expects a token of at least {MIN_TOKEN_CHARS} characters "
                          "from A-Z a-z 0-9 - . _ ~ + / (e.g. python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))')", field="token")
    return token


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if header is None:
        return None
    match = _BEARER.fullmatch(header.strip())
    return match.group(1) if match else None


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (the time taken does not depend on where the strings differ)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def single_authorization(values: list[str] | None) -> str | None:
    """The one ``Authorization`` field of a request, or None; two are a 400.

    RFC 9110 §5.3: a field that is not a list may appear once. Two Authorization fields are
    malformed, and answering with either one would let a proxy and this server disagree on
    who is asking.
    """
    values = list(values or [])
    if len(values) > 1:
        raise BadRequest(f"Authorization: sent {len(values)} times; send it once",
                         field="Authorization")
    return values[0] if values else None


def authorize(expected: str | None, header: str | None, query_token: str | None = None) -> None:
    """Raise Unauthorized unless the request carries the token (always passes without one)."""
    if expected is None:
        return
    given = bearer_token(header) if header is not None else query_token
    if given is None:
        raise Unauthorized("missing access token: send Authorization: Bearer <token>", field="Authorization")
    if not token_matches(given, expected):
        raise Unauthorized("wrong access token", field="Authorization")


class CrossOrigin(BgenError):
    """A browser request from another site to a server without an access token (403)."""

    status = 403


def check_origin(token: str | None, origin: str | None, host: str | None) -> None:
    """Refuse a cross-site browser request when no access token protects the server.

    Without a token, any page a lab member opens could otherwise start runs (spending the LLM
    budget), delete them, or read every run and policy (the answers allow any origin, for
    the tools a lab runs on its own machines): browsers send such requests, and WebSocket
    handshakes, with an ``Origin`` header (RFC 6454 §7), and a simple POST or GET needs no
    preflight. Allowed: no ``Origin`` (curl, scripts), a loopback origin, or the server's
    own host. With a token the token decides.
    """
    if token is not None or origin is None:
        return
    try:
        origin_host = urlsplit(origin).hostname or ""
    except ValueError:
        origin_host = ""
    own_host = (host or "").rsplit(":", 1)[0].strip("[]") if host else ""
    if origin_host and (is_loopback(origin_host) or origin_host == own_host):
        return
    raise CrossOrigin(f"requests from the page at {origin[:100]!r} are refused: this server has "
                      "no access token (start it with --token-file to allow other origins)",
                      field="Origin")


class MisdirectedRequest(BgenError):
    """A request naming a host this server does not answer for (421, RFC 9110 §15.5.20)."""

    status = 421


def host_name(host_field: str) -> str:
    """The host of a ``Host`` field value, lower case, without the port, IPv6 brackets or a
    trailing dot (``localhost.`` is ``localhost``)."""
    value = host_field.strip().lower()
    if value.startswith("[") or value.count(":") == 1:
        value = value[:value.rfind(":")] if value.rfind(":") > value.rfind("]") else value
    value = value.rstrip(".") if not value.startswith("[") else value
    if value.startswith("["):
        return value[1:-1] if value.endswith("]") else value
    return value


def check_host(token: str | None, host_field: str | None, bind_host: str) -> None:
    """Refuse a request to a tokenless loopback server that names another host.

    DNS rebinding: a page on ``evil.example`` can point that name at 127.0.0.1 and then read
    this server's runs and policies as same-origin requests; ``Origin`` says nothing then, but
    the ``Host`` field still says ``evil.example``. A server bound to loopback without a token
    answers only requests naming a loopback host (``localhost``, ``*.localhost``, 127.0.0.0/8,
    ``::1``). With a token the token decides; a server bound to a network address with
    ``--allow-anonymous`` answers any name (its addresses are not known here); a request
    without ``Host`` (HTTP/1.0) carries no name to check.
    """
    if token is not None or host_field is None or not is_loopback(bind_host):
        return
    name = host_name(host_field)
    if is_loopback(name) or name.endswith(".localhost"):
        return
    raise MisdirectedRequest(f"Host: this server answers for loopback names only, actual: "
                             f"{host_field[:100]!r} (start it with --token-file to serve other "
                             f"names)", field="Host")


def is_public(method: str, path: str) -> bool:
    return method == "OPTIONS" or (method in PUBLIC_METHODS and PUBLIC_PATHS.fullmatch(path) is not None)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``; any other name or address reaches a network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, allow_anonymous: bool) -> None:
    """Refuse to serve a network without a token unless anonymous access was asked for."""
    if token is None and not allow_anonymous and not is_loopback(host):
        raise ConfigError(f"--host {host}: refusing to serve a non-loopback address without an access "
                          f"token; give --token-file PATH (or set {TOKEN_ENV}), or pass --allow-anonymous "
                          "to let anyone who reaches the port start runs and read policies", field="host")


def redact(text: str) -> str:
    """``text`` with every ``token=...`` query value and Bearer credential replaced by ``***``."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with ``redact`` (installed on the server's log handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

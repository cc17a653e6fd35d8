"""HTTP/1.1 request framing, without I/O: the request line, header lines and body length.

The API server (``bgen_server.ApiHandler``) reads raw lines and hands them here; anything these
functions refuse is answered 400 and the connection is closed, because after a framing error
nobody can say where the next request starts (RFC 9112 §2.2, §6.3 — the request-smuggling
shape: a proxy in front and this server must agree on every message boundary).

    check_request_line(line)  -> RequestLine(method, target, version)      RFC 9112 §3
    check_field_lines(lines)  -> [(name, value)]                           RFC 9112 §5, §5.2
    body_length(fields)       -> int (0 when there is no body)             RFC 9112 §6.1-§6.3

Every refusal raises ``FramingError`` with a message saying what was expected and what came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 9110 §5.6.2: token = 1*tchar
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9112 §3: request-line = method SP request-target SP HTTP-version, one SP each, and
# HTTP-version = "HTTP/" DIGIT "." DIGIT (§2.3). This server speaks HTTP/1.0 and HTTP/1.1.
REQUEST_LINE = re.compile(r"([^ ]+) ([^ ]+) (HTTP/\d\.\d)")
SUPPORTED_VERSIONS = ("HTTP/1.0", "HTTP/1.1")
# RFC 9110 §5.5: field values are visible characters, SP and HTAB (obs-text allowed); no CR,
# LF or NUL.
FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# Request targets: visible ASCII only (RFC 9112 §3.2, origin-form / absolute-form / *).
TARGET = re.compile(r"[\x21-\x7e]+")
MAX_FIELDS = 100


class FramingError(ValueError):
    """The request cannot be framed; answer 400 and close the connection."""


@dataclass(frozen=True)
class RequestLine:
    method: str
    target: str
    version: str


def show(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def check_request_line(line: str) -> RequestLine:
    """``METHOD SP request-target SP HTTP/1.x`` (the line without its CRLF) or FramingError.

    RFC 9112 §3: exactly one SP between the three parts; the method is a token (RFC 9110
    §9.1); the version is HTTP/1.0 or HTTP/1.1 (§2.3; this server implements no other).
    """
    match = REQUEST_LINE.fullmatch(line)
    if match is None:
        raise FramingError(f"request line: expects METHOD SP target SP HTTP/1.1, actual: {show(line)}")
    method, target, version = match.groups()
    if not TOKEN.fullmatch(method):
        raise FramingError(f"request line: method is not a token, actual: {show(method)}")
    if not TARGET.fullmatch(target):
        raise FramingError(f"request line: target holds characters outside visible ASCII, "
                           f"actual: {show(target)}")
    if version not in SUPPORTED_VERSIONS:
        raise FramingError(f"request line: expects HTTP/1.0 or HTTP/1.1, actual: {show(version)}")
    return RequestLine(method, target, version)


def check_field_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Header lines (without line endings) -> [(name, value)] in order, or FramingError.

    RFC 9112 §5: ``field-name ":" OWS field-value OWS``; no whitespace between the name and
    the colon (§5.1: MUST be rejected with 400); a line beginning with SP or HTAB is obsolete
    line folding (§5.2: a server MUST reject it with 400 or unfold it; this one rejects); a
    line without a colon is not a field line at all.
    """
    if len(lines) > MAX_FIELDS:
        raise FramingError(f"headers: expects at most {MAX_FIELDS} field lines, actual: {len(lines)}")
    fields = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise FramingError(f"header line: obsolete line folding (a line starting with "
                               f"whitespace) is not accepted, actual: {show(line)}")
        name, colon, value = line.partition(":")
        if not colon:
            raise FramingError(f"header line: expects name: value, actual: {show(line)}")
        if name != name.rstrip(" \t"):
            raise FramingError(f"header line: whitespace between the field name and the colon, "
                               f"actual: {show(line)}")
        if not TOKEN.fullmatch(name):
            raise FramingError(f"header line: field name is not a token, actual: {show(name)}")
        value = value.strip(" \t")
        if not FIELD_VALUE.fullmatch(value):
            raise FramingError(f"header {name}: value holds a control character, actual: {show(value)}")
        fields.append((name, value))
    return fields


def field_values(fields: list[tuple[str, str]], name: str) -> list[str]:
    """Every value of field ``name`` (case-insensitive, RFC 9110 §5.1), in order."""
    lowered = name.lower()
    return [value for field, value in fields if field.lower() == lowered]


def body_length(fields: list[tuple[str, str]], version: str = "HTTP/1.1") -> int:
    """The request body's length in bytes, or FramingError.

    RFC 9112 §6.3: a request with ``Transfer-Encoding`` and ``Content-Length`` is a smuggling
    attempt or a broken client — reject it and close (item 3). This server implements no
    transfer coding, so any ``Transfer-Encoding`` is refused (§6.1; send Content-Length).
    ``Content-Length`` is 1*DIGIT (RFC 9110 §8.6): no sign, no spaces inside, no list; several
    field lines must agree (item 5: otherwise unrecoverable). No Content-Length: no body.
    RFC 9112 §3.2: an HTTP/1.1 request carries exactly one ``Host``.
    """
    hosts = field_values(fields, "Host")
    if version == "HTTP/1.1" and len(hosts) != 1:
        raise FramingError(f"Host: expects exactly one Host header in an HTTP/1.1 request, "
                           f"actual: {len(hosts)}")
    codings = field_values(fields, "Transfer-Encoding")
    lengths = field_values(fields, "Content-Length")
    if codings and lengths:
        raise FramingError("Transfer-Encoding: not accepted together with Content-Length")
    if codings:
        raise FramingError(f"Transfer-Encoding: this server implements no transfer coding "
                           f"(send Content-Length), actual: {show(', '.join(codings))}")
    if not lengths:
        return 0
    for value in lengths:
        if not value.isascii() or not value.isdigit():
            raise FramingError(f"Content-Length: expects a byte count (digits only), actual: {show(value)}")
    if len({int(value) for value in lengths}) > 1:
        raise FramingError(f"Content-Length: conflicting values {show(', '.join(lengths))}")
    return int(lengths[0])

"""A fake LLM provider on loopback that speaks the Anthropic Messages and OpenAI Chat APIs.

    server = FakeLLMServer(api_key="k-123")       # port 0, own thread
    server.script(text_reply("```python\\n...\\n```"), error_reply(429, "slow down", retry_after=0))
    ...  client posts to server.url ...
    server.requests   # every request: path, headers, body, api
    server.problems   # schema violations found in requests (a test asserts it is empty)
    server.close()

Every request is checked against the provider's documented request schema (required fields,
roles, types, headers). A violation is recorded in ``problems`` and answered with a 400 in the
provider's error shape, as the real service would. Replies are scripted in order; each item is
a reply spec or a callable ``(request) -> spec``; when the script is empty ``default`` answers.

The API is chosen from the path: ``.../messages`` → Anthropic, ``.../chat/completions`` →
OpenAI; ``service_paths`` maps other paths (gateway service URLs) to an API.

Task-spec calls (system prompt ``TASK_SPEC_SYSTEM_PROMPT``) are a separate channel: recorded
in ``spec_requests``, answered from ``spec_script(...)`` and then ``spec_default`` (the default
spec, reach the target, at no token cost), so tests about policies script only policies.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bgen.orchestrator.prompt import TASK_SPEC_SYSTEM_PROMPT

ANTHROPIC_TOP_LEVEL = {"model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k",
                       "stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking"}
OPENAI_TOP_LEVEL = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature",
                    "top_p", "n", "stop", "stream", "presence_penalty", "frequency_penalty", "seed",
                    "response_format", "user", "tools", "tool_choice", "reasoning_effort"}
MAX_TOKENS_REJECTION = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                        "Use 'max_completion_tokens' instead.")


# --- reply specs ------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int = 200
    text: str | None = None            # success text (status 200)
    message: str = ""                  # error message (status != 200)
    error_type: str | None = None
    retry_after: str | None = None
    delay_s: float = 0.0               # wait before answering (a slow provider)
    stop_reason: str | None = None     # override stop_reason / finish_reason
    raw_body: bytes | None = None      # send these bytes as they are
    usage: tuple[int, int] | None = None


def text_reply(text: str, **kw) -> Reply:
    return Reply(text=text, **kw)


def error_reply(status: int, message: str, *, error_type: str | None = None,
                retry_after: str | float | None = None) -> Reply:
    return Reply(status=status, message=message, error_type=error_type,
                 retry_after=None if retry_after is None else str(retry_after))


def slow_reply(delay_s: float, text: str = "```python\npass\n```") -> Reply:
    return Reply(text=text, delay_s=delay_s)


# --- reply shapes real providers send (bodies answered as they are, after the request checks) ---

def json_reply(body, status: int = 200) -> Reply:
    """Answer ``body`` (a dict) with ``status``, whatever it holds: a provider's odd shape."""
    return Reply(status=status, raw_body=json.dumps(body).encode("utf-8"))


def anthropic_message(content: list, *, stop_reason: str | None = "end_turn",
                      usage: tuple[int, int] | None = (100, 50), model: str = "claude-x") -> dict:
    """A Messages API success body with ``content`` blocks as given (``usage=None``: none)."""
    body = {"id": "msg_shape", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None}
    if usage is not None:
        body["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
    return body


def openai_completion(message: dict, *, finish_reason: str | None = "stop",
                      usage: tuple[int, int] | None = (100, 50), model: str = "gpt-x",
                      choice_extra: dict | None = None) -> dict:
    """A Chat Completions success body whose first choice has ``message`` as given."""
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason,
              **(choice_extra or {})}
    body = {"id": "chatcmpl-shape", "object": "chat.completion", "created": 0, "model": model,
            "choices": [choice]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                         "total_tokens": usage[0] + usage[1]}
    return body


def gateway_error(message: str, code: int | str, status: int = 200) -> Reply:
    """A gateway's error object (``{"error": {"message", "code"}}``), by default inside a 200."""
    return json_reply({"error": {"message": message, "code": code}}, status)


def think_wrapped(final: str, draft: str, *, tag: str = "think") -> str:
    """A reasoning model's content: a ``<think>`` section holding a draft block, then the answer."""
    return (f"<{tag}>\nThe user wants a policy. A first draft:\n```python\n{draft}```\n"
            f"That has a flaw; the final version fixes it.\n</{tag}>\n\n"
            f"Here is the policy:\n```python\n{final}```\n")


@dataclass
class Recorded:
    api: str
    path: str
    headers: dict
    body: object
    problems: list = field(default_factory=list)

    @property
    def user_text(self) -> str:
        """The user message as text (both APIs, string or block content)."""
        if not isinstance(self.body, dict):
            return ""
        for message in self.body.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return "".join(b.get("text", "") for b in content if isinstance(b, dict))
        return ""

    @property
    def system_text(self) -> str:
        if not isinstance(self.body, dict):
            return ""
        if isinstance(self.body.get("system"), str):
            return self.body["system"]
        for message in self.body.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "system":
                return str(message.get("content"))
        return ""


# --- schema checks ----------------------------------------------------------------------------

def _is_int(value) -> bool:
    return type(value) is int


def _is_number(value) -> bool:
    return type(value) in (int, float)


def check_auth(api: str, headers: dict, api_key: str | None) -> str | None:
    """None when authorised, else the provider's complaint."""
    if api_key is None:
        return None
    bearer = headers.get("authorization", "")
    x_key = headers.get("x-api-key")
    if api == "anthropic":
        if x_key == api_key or bearer == f"Bearer {api_key}":
            return None
        return "invalid x-api-key"
    if bearer == f"Bearer {api_key}":
        return None
    return "Incorrect API key provided."


def check_anthropic(headers: dict, body) -> list[str]:
    problems = []
    if headers.get("anthropic-version") != "2023-06-01":
        problems.append(f"anthropic-version: header is required, actual: {headers.get('anthropic-version')!r}")
    if "application/json" not in headers.get("content-type", ""):
        problems.append(f"content-type: expects application/json, actual: {headers.get('content-type')!r}")
    if not isinstance(body, dict):
        return problems + ["body: expects a JSON object"]
    unknown = sorted(set(body) - ANTHROPIC_TOP_LEVEL)
    if unknown:
        problems.append(f"{unknown[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body.get("model"):
        problems.append("model: Field required")
    if not _is_int(body.get("max_tokens")) or body["max_tokens"] < 1:
        problems.append("max_tokens: Field required (a positive integer)")
    if "system" in body and not isinstance(body["system"], (str, list)):
        problems.append("system: Input should be a valid string")
    if "temperature" in body and (not _is_number(body["temperature"]) or not 0 <= body["temperature"] <= 1):
        problems.append("temperature: Input should be a number between 0 and 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return problems + ["messages: Field required (a non-empty list)"]
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            problems.append(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            continue
        content = message.get("content")
        if isinstance(content, str):
            if not content:
                problems.append(f"messages.{i}.content: text content blocks must be non-empty")
        elif isinstance(content, list):
            for j, block in enumerate(content):
                if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
                    problems.append(f"messages.{i}.content.{j}: expects a text block")
        else:
            problems.append(f"messages.{i}.content: Field required")
    if messages and isinstance(messages[0], dict) and messages[0].get("role") != "user":
        problems.append("messages: first message must use the \"user\" role")
    return problems


def check_openai(headers: dict, body) -> list[str]:
    problems = []
    if "application/json" not in headers.get("content-type", ""):
        problems.append(f"content-type: expects application/json, actual: {headers.get('content-type')!r}")
    if not isinstance(body, dict):
        return problems + ["body: expects a JSON object"]
    unknown = sorted(set(body) - OPENAI_TOP_LEVEL)
    if unknown:
        problems.append(f"Unrecognized request argument supplied: {unknown[0]}")
    if not isinstance(body.get("model"), str) or not body.get("model"):
        problems.append("you must provide a model parameter")
    if "max_tokens" in body and "max_completion_tokens" in body:
        problems.append("max_tokens and max_completion_tokens cannot both be set")
    for name in ("max_tokens", "max_completion_tokens"):
        if name in body and (not _is_int(body[name]) or body[name] < 1):
            problems.append(f"{name}: expects a positive integer")
    if "temperature" in body and (not _is_number(body["temperature"]) or not 0 <= body["temperature"] <= 2):
        problems.append("temperature: expects a number between 0 and 2")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return problems + ["messages: expects a non-empty array"]
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "developer", "user", "assistant"):
            problems.append(f"messages[{i}].role: expects one of system, developer, user, assistant")
        elif not isinstance(message.get("content"), str):
            problems.append(f"messages[{i}].content: expects a string")
    return problems


# --- reply bodies -----------------------------------------------------------------------------

def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def anthropic_success(model: str, text: str, usage, stop_reason=None, n: int = 0) -> dict:
    return {"id": f"msg_fake{n:04d}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason or "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}


def openai_success(model: str, text: str, usage, stop_reason=None, n: int = 0) -> dict:
    return {"id": f"chatcmpl-fake{n:04d}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": stop_reason or "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                      "total_tokens": usage[0] + usage[1]}}


_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                          403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                          429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                       429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def anthropic_error(status: int, message: str, error_type: str | None = None) -> dict:
    return {"type": "error",
            "error": {"type": error_type or _ANTHROPIC_ERROR_TYPES.get(status, "api_error"),
                      "message": message}}


def openai_error(status: int, message: str, error_type: str | None = None,
                 code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message,
                      "type": error_type or _OPENAI_ERROR_TYPES.get(status, "server_error"),
                      "param": param, "code": code}}


# --- the server -------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):   # keep test output clean
        pass

    def do_POST(self):
        fake: FakeLLMServer = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        api = fake.api_for(self.path)
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        record = Recorded(api=api or "unknown", path=self.path, headers=headers, body=body)
        with fake.lock:
            (fake.spec_requests if fake.is_spec(record) else fake.requests).append(record)
            n = len(fake.requests) + len(fake.spec_requests)
        if api is None:
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        auth_problem = check_auth(api, headers, fake.api_key)
        if auth_problem:
            return self._error(api, 401, auth_problem)
        problems = check_anthropic(headers, body) if api == "anthropic" else check_openai(headers, body)
        if problems:
            record.problems.extend(problems)
            with fake.lock:
                fake.problems.extend(problems)
            return self._error(api, 400, problems[0])
        if api == "openai" and fake.reject_max_tokens and "max_tokens" in body:
            return self._send(400, openai_error(400, MAX_TOKENS_REJECTION, "invalid_request_error",
                                               "unsupported_parameter", "max_tokens"))
        spec = fake.next_reply(record)
        if spec.delay_s:
            fake.release.wait(spec.delay_s)
        if spec.raw_body is not None:
            return self._send(spec.status, spec.raw_body)
        if spec.status != 200:
            return self._error(api, spec.status, spec.message, spec.error_type, spec.retry_after)
        text = spec.text or ""
        usage = spec.usage or (_tokens(record.system_text + record.user_text), _tokens(text))
        make = anthropic_success if api == "anthropic" else openai_success
        return self._send(200, make(body.get("model"), text, usage, spec.stop_reason, n))

    def _error(self, api, status, message, error_type=None, retry_after=None):
        body = anthropic_error(status, message, error_type) if api == "anthropic" else \
            openai_error(status, message, error_type)
        extra = {"Retry-After": retry_after} if retry_after is not None else {}
        return self._send(status, body, extra)

    def _send(self, status: int, body, extra_headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client gave up (timeout test)


class FakeLLMServer:
    """Loopback provider; ``url`` is its base URL (no path)."""

    def __init__(self, *, api_key: str | None = "test-key", default: Reply | None = None,
                 service_paths: dict[str, str] | None = None, reject_max_tokens: bool = False):
        self.api_key = api_key
        self.default = default or text_reply("```python\ndef act(t, agent, world, fw, env, helpers):\n"
                                             "    return None\n```")
        self.service_paths = dict(service_paths or {})
        self.reject_max_tokens = reject_max_tokens
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.lock = threading.Lock()              # guards requests, problems, _script
        self.release = threading.Event()          # set on close: cuts slow replies short
        self._script: list = []
        self.spec_requests: list[Recorded] = []
        self.spec_default = text_reply('```json\n{"checks": [{"kind": "reach", "point": "target", '
                                       '"radius": 1.0}]}\n```', usage=(0, 0))
        self._spec_script: list = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self                   # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # Serves requests until close(); daemon so a failing test cannot hang the run.
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-llm",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def script(self, *replies) -> "FakeLLMServer":
        with self.lock:
            self._script.extend(replies)
        return self

    def spec_script(self, *replies) -> "FakeLLMServer":
        """Replies to task-spec calls, in order (then ``spec_default``)."""
        with self.lock:
            self._spec_script.extend(replies)
        return self

    @staticmethod
    def is_spec(record: Recorded) -> bool:
        return record.system_text.startswith(TASK_SPEC_SYSTEM_PROMPT[:60])

    def next_reply(self, record: Recorded) -> Reply:
        with self.lock:
            if self.is_spec(record):
                spec = self._spec_script.pop(0) if self._spec_script else self.spec_default
                return spec(record) if callable(spec) else spec
            spec = self._script.pop(0) if self._script else self.default
        return spec(record) if callable(spec) else spec

    def api_for(self, path: str) -> str | None:
        path = path.split("?", 1)[0].rstrip("/")
        if path in self.service_paths:
            return self.service_paths[path]
        if path.endswith("/messages"):
            return "anthropic"
        if path.endswith("/chat/completions"):
            return "openai"
        return None

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



def main(argv=None) -> None:
    """Serve scripted replies by hand: ``python -m tests.fake_llm [--key K] reply.txt ...``."""
    import argparse

    parser = argparse.ArgumentParser(description="Fake Anthropic/OpenAI provider on loopback")
    parser.add_argument("--key", default=None, help="required API key (default: none required)")
    parser.add_argument("replies", nargs="*", help="files whose text is answered in order")
    args = parser.parse_args(argv)
    server = FakeLLMServer(api_key=args.key)
    for path in args.replies:
        with open(path, encoding="utf-8") as handle:
            server.script(text_reply(handle.read()))
    print(f"fake LLM provider at {server.url} (anthropic: {server.url}/v1/messages, "
          f"openai: {server.url}/v1/chat/completions); Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()

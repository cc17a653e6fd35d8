"""Specification of the LLM client (bgen/llm/client.py), spoken to a fake provider on loopback."""

from __future__ import annotations

import json
import unittest

from bgen.errors import ConfigError, ProviderError, ProviderRequestError
from bgen.llm.client import (
    DEFAULT_URLS, LLMClient, LLMSettings, auth_headers, backoff_delay, build_body,
    endpoint_url, extract_code, is_retryable_code, key_required, provider_error_message,
    retry_after_seconds,
)
from tests.fake_llm import (FakeLLMServer, Reply, anthropic_message, error_reply, gateway_error,
                            json_reply, openai_completion, slow_reply, text_reply, think_wrapped)

KEY = "sk-test-0123456789"
ENV = {"LLVPN_API_KEY": KEY}
SHORT_TIMEOUT_S = 0.3     # the one timeout a "slow provider" test waits for
POLICY = "def act(t, agent, world, fw, env, helpers):\n    return None\n"
# A whole module (act, collect, finalize) and a draft of it that a reasoning section holds.
MODULE = ("import math\n\n\ndef act(t, agent, world, fw, env, helpers):\n"
          "    if agent.get_action_py() is None:\n        return None\n    return None\n\n\n"
          "def collect(step_ctx):\n    return {}\n\n\ndef finalize(ep_ctx):\n"
          "    return {\"summary\": \"final\"}\n")
DRAFT = MODULE.replace("final", "draft")
TABBED = MODULE.replace("    ", "\t")


def fence(code: str, tag: str = "python", marker: str = "```") -> str:
    return f"{marker}{tag}\n{code}{marker}\n"


def indented(code: str, prefix: str = "   ") -> str:
    return "".join(prefix + line if line else line for line in code.splitlines(True))


LIST_ITEM = ("1. Save this as policy.py:\n\n   ```python\n" + indented(MODULE) + "   ```\n\n"
             "2. Run it with the iterate command.\n")
HINT = "raise --max-tokens (iterate) or max_tokens (POST /run)"


class Sleeps(list):
    """Records the waits the client asks for, without waiting."""

    def __call__(self, seconds):
        self.append(seconds)


class ProviderTestCase(unittest.TestCase):
    provider = "anthropic"

    def setUp(self):
        self.server = FakeLLMServer(api_key=KEY)
        self.addCleanup(self.server.close)
        self.sleeps = Sleeps()

    def client(self, **changes) -> LLMClient:
        environ = changes.pop("environ", ENV)
        settings = LLMSettings(provider=changes.pop("provider", self.provider),
                               url=changes.pop("url", self.server.url), **changes)
        return LLMClient(settings, environ=environ, sleep=self.sleeps,
                         rand=lambda: 0.5)

    def assertNoSchemaProblems(self):
        self.assertEqual(self.server.problems, [])


class TestEndpointUrl(unittest.TestCase):
    def test_base_urls_with_or_without_v1_and_full_endpoints_map_to_the_api_path(self):
        table = [
            ("anthropic", "https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
            ("anthropic", "https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
            ("anthropic", "https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
            ("anthropic", "https://api.anthropic.com/v1/messages", "https://api.anthropic.com/v1/messages"),
            ("openai", "https://api.openai.com", "https://api.openai.com/v1/chat/completions"),
            ("openai", "http://localhost:11434/v1", "http://localhost:11434/v1/chat/completions"),
            ("openai", "http://127.0.0.1:8080/v1/chat/completions/", "http://127.0.0.1:8080/v1/chat/completions"),
            ("openai", "http://host/proxy/v1", "http://host/proxy/v1/chat/completions"),
        ]
        for provider, url, expected in table:
            with self.subTest(url=url):
                self.assertEqual(endpoint_url(provider, url), expected)

    def test_a_gateway_service_url_is_posted_to_as_given(self):
        self.assertEqual(endpoint_url("anthropic", None), DEFAULT_URLS["anthropic"])
        self.assertEqual(endpoint_url("openai", None), DEFAULT_URLS["openai"])
        self.assertEqual(endpoint_url("openai", "https://llvpn.io/v1/service/abc"), "https://llvpn.io/v1/service/abc")

    def test_a_url_that_is_not_http_is_a_config_error(self):
        with self.assertRaises(ConfigError) as caught:
            endpoint_url("openai", "ftp://example.com")
        self.assertEqual(str(caught.exception), "openai URL: expects an http(s) URL, actual: 'ftp://example.com'")
        for url in ("http://[::1", "http://127.0.0.1:1/v1\r\nX-Evil: 1", "http://a b/v1",
                    "http://127.0.0.1:70000", "http://:80/v1", "http://\x7f/", "http://a..b/",
                    "http://" + "a" * 64 + ".com/", "http://h:0/", "http://h:/",
                    "http://user:pw@h/"):
            with self.subTest(url=url), self.assertRaises(ConfigError):
                endpoint_url("anthropic", url)
        with self.assertRaises(ConfigError) as caught:
            endpoint_url("anthropic", "http://user:secret@h/v1")
        self.assertNotIn("secret", caught.exception.message)


class TestSettings(unittest.TestCase):
    def test_defaults_are_the_reference_iterate_defaults(self):
        settings = LLMSettings()
        self.assertEqual((settings.provider, settings.model, settings.max_tokens, settings.temperature,
                          settings.api_key_env, settings.timeout_s),
                         ("anthropic", "claude-3-5-sonnet-20241022", 2400, 0.2, "LLVPN_API_KEY", 120.0))

    def test_bad_settings_name_the_field(self):
        table = [
            ({"provider": "gemini"}, "provider: expects one of anthropic, openai, actual: 'gemini'"),
            ({"max_tokens": 0}, "max_tokens: expects an integer in 1..200000, actual: 0"),
            ({"temperature": 3}, "temperature: expects a number in 0..2, actual: 3"),
            ({"auth": "basic"}, "auth: expects one of auto, x-api-key, bearer, both, none, actual: 'basic'"),
        ]
        for changes, message in table:
            with self.subTest(changes=changes), self.assertRaises(ConfigError) as caught:
                LLMSettings(**changes).validated()
            self.assertEqual(str(caught.exception), message)


class TestAuthentication(ProviderTestCase):
    def test_official_anthropic_gets_x_api_key_and_gateways_also_get_a_bearer_token(self):
        official = LLMSettings(url="https://api.anthropic.com")
        gateway = LLMSettings(url="https://llvpn.io/v1/service/abc")
        self.assertEqual(auth_headers(official, "k"), {"x-api-key": "k"})
        self.assertEqual(auth_headers(gateway, "k"), {"x-api-key": "k", "Authorization": "Bearer k"})
        self.assertEqual(auth_headers(LLMSettings(provider="openai"), "k"), {"Authorization": "Bearer k"})
        self.assertEqual(auth_headers(LLMSettings(auth="none"), "k"), {})

    def test_a_missing_key_is_an_error_naming_the_variable_before_any_request(self):
        with self.assertRaises(ConfigError) as caught:
            self.client(environ={}, api_key_env="MY_KEY")
        self.assertEqual(str(caught.exception),
                         "no API key: set the environment variable MY_KEY (or choose another with --api-key-env)")
        self.assertEqual(self.server.requests, [])

    def test_a_local_openai_compatible_server_needs_no_key(self):
        local = FakeLLMServer(api_key=None).script(text_reply("print(1)"))
        self.addCleanup(local.close)
        self.assertFalse(key_required(LLMSettings(provider="openai", url=local.url)))
        self.assertTrue(key_required(LLMSettings(provider="openai", url="https://api.openai.com")))
        reply = self.client(provider="openai", url=local.url, environ={}).generate("sys", "user")
        self.assertEqual(reply.code, "print(1)\n")
        self.assertNotIn("authorization", local.requests[0].headers)

    def test_auth_none_sends_no_key_even_when_the_variable_is_set(self):
        local = FakeLLMServer(api_key=None)
        self.addCleanup(local.close)
        self.client(url=local.url, auth="none").generate("sys", "user")
        headers = local.requests[0].headers
        self.assertNotIn("authorization", headers)
        self.assertNotIn("x-api-key", headers)

    def test_a_wrong_key_is_a_request_error_with_the_providers_message_and_no_retry(self):
        with self.assertRaises(ProviderRequestError) as caught:
            self.client(environ={"LLVPN_API_KEY": "wrong-key"}).generate("sys", "user")
        self.assertEqual(str(caught.exception),
                         "anthropic rejected the request (HTTP 401): invalid x-api-key (authentication_error)")
        self.assertEqual(caught.exception.http_status, 401)
        self.assertEqual(len(self.server.requests), 1)
        self.assertEqual(self.sleeps, [])


class TestKeyNeverLeaks(ProviderTestCase):
    def test_the_key_is_absent_from_settings_replies_errors_and_repr(self):
        self.server.script(text_reply("x = 1"), error_reply(403, f"key {KEY} is not allowed"))
        client = self.client()
        reply = client.generate("sys", "user")
        with self.assertRaises(ProviderRequestError) as caught:
            client.generate("sys", "user")
        exported = json.dumps([client.settings.to_dict(), reply.to_dict(), repr(client),
                               str(caught.exception), caught.exception.provider_message])
        self.assertNotIn(KEY, exported)
        self.assertIn("key *** is not allowed", str(caught.exception))


class TestAnthropicMessages(ProviderTestCase):
    def test_the_request_follows_the_messages_schema(self):
        self.server.script(text_reply("```python\n" + POLICY + "```"))
        self.client(model="claude-x", max_tokens=123, temperature=0.3).generate("be brief", "write code")
        self.assertNoSchemaProblems()
        request = self.server.requests[0]
        self.assertEqual(request.path, "/v1/messages")
        self.assertEqual(request.headers["anthropic-version"], "2023-06-01")
        self.assertEqual(request.headers["x-api-key"], KEY)
        self.assertEqual(request.body, {"model": "claude-x", "max_tokens": 123, "system": "be brief",
                                        "messages": [{"role": "user", "content": "write code"}],
                                        "temperature": 0.3})

    def test_the_reply_gives_the_first_text_block_code_usage_and_latency(self):
        self.server.script(Reply(text="Here:\n```python\n" + POLICY + "```\nDone.", usage=(11, 22)))
        reply = self.client().generate("sys", "user")
        self.assertEqual(reply.code, POLICY)
        self.assertEqual((reply.input_tokens, reply.output_tokens, reply.attempts), (11, 22, 1))
        self.assertGreaterEqual(reply.latency_s, 0.0)
        self.assertFalse(reply.truncated)

    def test_a_reply_cut_at_max_tokens_is_marked_truncated(self):
        self.server.script(Reply(text="```python\nx = 1\n", stop_reason="max_tokens"))
        reply = self.client().generate("sys", "user")
        self.assertTrue(reply.truncated)
        self.assertEqual(reply.code, "x = 1\n")

    def test_a_gateway_service_path_receives_the_same_body(self):
        gateway = FakeLLMServer(api_key=KEY, service_paths={"/v1/service/abc": "anthropic"})
        self.addCleanup(gateway.close)
        self.client(url=gateway.url + "/v1/service/abc").generate("sys", "user")
        self.assertEqual(gateway.problems, [])
        self.assertEqual(gateway.requests[0].headers["authorization"], f"Bearer {KEY}")

    def test_an_invalid_request_carries_the_providers_message(self):
        self.server.script(error_reply(400, "prompt is too long: 250000 tokens > 200000 maximum"))
        with self.assertRaises(ProviderRequestError) as caught:
            self.client().generate("sys", "user")
        self.assertEqual(caught.exception.provider_message,
                         "prompt is too long: 250000 tokens > 200000 maximum (invalid_request_error)")


class TestOpenAIChatCompletions(ProviderTestCase):
    provider = "openai"

    def test_the_request_follows_the_chat_completions_schema(self):
        self.server.script(text_reply(POLICY))
        reply = self.client(model="gpt-4o", max_tokens=50).generate("sys", "user")
        self.assertNoSchemaProblems()
        request = self.server.requests[0]
        self.assertEqual(request.path, "/v1/chat/completions")
        self.assertEqual(request.headers["authorization"], f"Bearer {KEY}")
        self.assertEqual(request.body, {"model": "gpt-4o", "max_tokens": 50, "temperature": 0.2,
                                        "messages": [{"role": "system", "content": "sys"},
                                                     {"role": "user", "content": "user"}]})
        self.assertEqual(reply.code, POLICY)

    def test_reasoning_model_names_get_max_completion_tokens_and_no_temperature_up_front(self):
        for model in ("o1-mini", "o3", "gpt-5", "gpt-5-mini"):
            with self.subTest(model=model):
                body = build_body(LLMSettings(provider="openai", model=model), "s", "u")
                self.assertEqual(body["max_completion_tokens"], 2400)
                self.assertNotIn("max_tokens", body)
                self.assertNotIn("temperature", body)

    def test_a_model_rejecting_max_tokens_is_asked_again_once_with_max_completion_tokens(self):
        picky = FakeLLMServer(api_key=KEY, reject_max_tokens=True).script(text_reply("y = 2"))
        self.addCleanup(picky.close)
        reply = self.client(url=picky.url, model="new-model").generate("sys", "user")
        self.assertEqual(reply.code, "y = 2\n")
        self.assertEqual([sorted(r.body) for r in picky.requests],
                         [["max_tokens", "messages", "model", "temperature"],
                          ["max_completion_tokens", "messages", "model", "temperature"]])
        self.assertEqual(reply.attempts, 2)
        self.assertEqual(self.sleeps, [])

    def test_an_error_body_carries_the_providers_message(self):
        self.server.script(error_reply(404, "The model `nope` does not exist", error_type="invalid_request_error"))
        with self.assertRaises(ProviderRequestError) as caught:
            self.client(model="nope").generate("sys", "user")
        self.assertEqual(str(caught.exception), "openai rejected the request (HTTP 404): "
                                                "The model `nope` does not exist (invalid_request_error)")

    def test_empty_content_is_a_provider_error(self):
        self.server.script(text_reply(""))
        with self.assertRaises(ProviderError) as caught:
            self.client().generate("sys", "user")
        self.assertIn("choices[0].message.content to be text", str(caught.exception))


class TestRetries(ProviderTestCase):
    def test_429_waits_as_long_as_retry_after_says_then_succeeds(self):
        self.server.script(error_reply(429, "rate limited", retry_after=7), text_reply("z = 3"))
        reply = self.client().generate("sys", "user")
        self.assertEqual(self.sleeps, [7.0])
        self.assertEqual((reply.code, reply.attempts), ("z = 3\n", 2))

    def test_retry_after_is_capped(self):
        self.server.script(error_reply(429, "rate limited", retry_after=3600), text_reply("z = 3"))
        self.client(retry_after_cap_s=60.0).generate("sys", "user")
        self.assertEqual(self.sleeps, [60.0])

    def test_5xx_is_retried_with_exponential_backoff(self):
        self.server.script(error_reply(500, "boom"), error_reply(529, "overloaded"),
                           error_reply(503, "busy"), text_reply("ok = 1"))
        reply = self.client(backoff_base_s=1.0).generate("sys", "user")
        # rand() is 0.5: each delay is 3/4 of base * 2**n
        self.assertEqual(self.sleeps, [0.75, 1.5, 3.0])
        self.assertEqual(reply.attempts, 4)

    def test_persistent_5xx_ends_in_one_provider_error_with_the_last_message(self):
        self.server.script(*[error_reply(500, "internal trouble")] * 3)
        with self.assertRaises(ProviderError) as caught:
            self.client(max_retries=2).generate("sys", "user")
        self.assertNotIsInstance(caught.exception, ProviderRequestError)
        self.assertEqual(str(caught.exception),
                         f"anthropic request to {self.server.url}/v1/messages failed after 3 attempts: "
                         "HTTP 500: internal trouble (api_error)")

    def test_a_reply_slower_than_the_timeout_is_retried_then_reported(self):
        self.server.script(slow_reply(5.0), slow_reply(5.0))
        with self.assertRaises(ProviderError) as caught:
            self.client(timeout_s=SHORT_TIMEOUT_S, max_retries=1).generate("sys", "user")
        self.assertTrue(str(caught.exception).endswith(f"failed after 2 attempts: no reply within {SHORT_TIMEOUT_S:g} s"))
        self.assertEqual(len(self.sleeps), 1)

    def test_a_refused_connection_is_retried_then_reported(self):
        dead = FakeLLMServer()
        url = dead.url
        dead.close()
        with self.assertRaises(ProviderError) as caught:
            self.client(url=url, max_retries=1).generate("sys", "user")
        self.assertIn("failed after 2 attempts: connection failed", str(caught.exception))

    def test_backoff_is_jittered_between_half_and_all_of_the_capped_exponential(self):
        settings = LLMSettings(backoff_base_s=1.0, backoff_cap_s=10.0)
        self.assertEqual(backoff_delay(2, settings, None, lambda: 0.0), 2.0)
        self.assertEqual(backoff_delay(2, settings, None, lambda: 1.0), 4.0)
        self.assertEqual(backoff_delay(9, settings, None, lambda: 1.0), 10.0)
        self.assertEqual(backoff_delay(0, settings, 2.5), 2.5)


class TestReplyShapes(ProviderTestCase):
    """Each row: a body a provider (or a gateway, or a local server) sends with HTTP 200 ->
    the code taken from it, or the exact error (``{url}``: the endpoint)."""

    def check_rows(self, provider: str, rows: list) -> None:
        for name, body, expected in rows:
            with self.subTest(shape=name):
                self.server.script(json_reply(body))
                client = self.client(provider=provider, max_retries=0)
                if isinstance(expected, str):
                    reply = client.generate("sys", "user")
                    self.assertEqual(reply.code, expected)
                else:
                    kind, message = expected
                    with self.assertRaises(kind) as caught:
                        client.generate("sys", "user")
                    self.assertEqual(str(caught.exception), message.format(url=client.endpoint))
        self.assertNoSchemaProblems()

    def test_anthropic_messages_shapes(self):
        text = lambda t: {"type": "text", "text": t}                        # noqa: E731
        thinking = {"type": "thinking", "thinking": "Plan:\n" + fence(DRAFT), "signature": "sig"}
        rows = [
            ("one fenced block", anthropic_message([text("Here:\n" + fence(MODULE) + "Done.")]), MODULE),
            ("a thinking block before the text", anthropic_message([thinking, text(fence(MODULE))]), MODULE),
            ("a redacted thinking block", anthropic_message([{"type": "redacted_thinking", "data": "x"},
                                                             text(fence(MODULE))]), MODULE),
            ("<think> section with a draft block", anthropic_message([text(think_wrapped(MODULE, DRAFT))]),
             MODULE),
            ("<thinking> section with a draft block",
             anthropic_message([text(think_wrapped(MODULE, DRAFT, tag="thinking"))]), MODULE),
            ("closing </think> with no opening tag",
             anthropic_message([text("draft:\n" + fence(DRAFT) + "</think>\n" + fence(MODULE))]), MODULE),
            ("<think> section, then the module with no fence",
             anthropic_message([text("<think>x = </think>\n" + MODULE)]), MODULE),
            ("fence indented under a numbered list item", anthropic_message([text(LIST_ITEM)]), MODULE),
            ("prose and code in two text blocks", anthropic_message([text("Here it is."), text(fence(MODULE))]),
             MODULE),
            ("CRLF line ends and tab indentation",
             anthropic_message([text(fence(TABBED).replace("\n", "\r\n"))]), TABBED),
            ("~~~ fence", anthropic_message([text(fence(MODULE, "", "~~~"))]), MODULE),
            ("```Python tag after a json block",
             anthropic_message([text(fence("{}", "json") + fence(MODULE, "Python"))]), MODULE),
            ("a snippet, then the whole module",
             anthropic_message([text(fence("def act(t, agent, world, fw, env, helpers):\n    return None\n")
                                     + fence(MODULE, "py"))]), MODULE),
            ("the module, then an untagged shell line",
             anthropic_message([text(fence(MODULE) + fence("python -m bgen.orchestrator.iterate --policy p.py", ""))]),
             MODULE),
            ("a fence cut off by max_tokens",
             anthropic_message([text("```python\nx = 1\n")], stop_reason="max_tokens"), "x = 1\n"),
            ("no usage", anthropic_message([text(fence(MODULE))], usage=None), MODULE),
            ("max_tokens after only a thinking block", anthropic_message([thinking], stop_reason="max_tokens"),
             (ProviderError, "anthropic reply from {url} stopped at the token limit (max_tokens 2400) with "
                             f"only thinking content and no text: {HINT}")),
            ("overloaded_error inside a 200",
             {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
             (ProviderError, "anthropic request to {url} failed after 1 attempt: provider error in a 200 "
                             "reply: Overloaded (overloaded_error)")),
            ("a gateway's 502 inside a 200",
             {"error": {"message": "Provider returned error: upstream overloaded", "code": 502}},
             (ProviderError, "anthropic request to {url} failed after 1 attempt: provider error in a 200 "
                             "reply: Provider returned error: upstream overloaded (502)")),
            ("invalid_request_error inside a 200",
             {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}},
             (ProviderRequestError, "anthropic answered with an error: prompt is too long (invalid_request_error)")),
            ("no content blocks", anthropic_message([]),
             (ProviderError, "anthropic reply from {url} is unusable: expects a text block in 'content', "
                             "actual: none")),
            ("a refusal", anthropic_message([], stop_reason="refusal"),
             (ProviderError, "anthropic reply from {url} is unusable: the model refused (stop_reason: refusal)")),
        ]
        self.assertGreaterEqual(len(rows), 15)
        self.check_rows("anthropic", rows)

    def test_openai_chat_completions_shapes(self):
        content = lambda t, **kw: openai_completion({"content": t}, **kw)      # noqa: E731
        rows = [
            ("content with one fenced block", content(fence(MODULE)), MODULE),
            ("<think> section with a draft block (vLLM, Ollama, llama.cpp)", content(think_wrapped(MODULE, DRAFT)),
             MODULE),
            ("<think> section, then the module with no fence",
             content("<think>\nI will write it.\n</think>\n\n" + MODULE), MODULE),
            ("closing </think> only (opening tag in the chat template)",
             content("so the draft is\n" + fence(DRAFT) + "</think>\n\n" + fence(MODULE)), MODULE),
            ("<reasoning> section", content(think_wrapped(MODULE, DRAFT, tag="reasoning")), MODULE),
            ("reasoning_content beside content (DeepSeek, vLLM)",
             openai_completion({"content": fence(MODULE), "reasoning_content": fence(DRAFT)}), MODULE),
            ("reasoning beside content", openai_completion({"content": fence(MODULE), "reasoning": "hmm"}), MODULE),
            ("content as a list of chunks with thinking (Mistral)",
             openai_completion({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": fence(DRAFT)}]},
                                            {"type": "text", "text": fence(MODULE)}]}), MODULE),
            ("content as text chunks split mid-block",
             openai_completion({"content": [{"type": "text", "text": "```python\n" + MODULE[:40]},
                                            {"type": "text", "text": MODULE[40:] + "```"}]}), MODULE),
            ("fence indented under a numbered list item", content(LIST_ITEM), MODULE),
            ("~~~python fence", content(fence(MODULE, "python", "~~~")), MODULE),
            ("no fence, prose around the module", content("Here is the policy:\n" + MODULE + "\nGood luck!"),
             MODULE),
            ("no usage", content(fence(MODULE), usage=None), MODULE),
            ("a fence cut off by the length limit", content("```python\ny = 2\n", finish_reason="length"),
             "y = 2\n"),
            ("content null, finish_reason length, reasoning_content",
             openai_completion({"content": None, "reasoning_content": "Let me think..."}, finish_reason="length"),
             (ProviderError, "openai reply from {url} stopped at the token limit (max_tokens 2400) with only "
                             f"reasoning and no text: {HINT}")),
            ("empty content, finish_reason length", content("", finish_reason="length"),
             (ProviderError, "openai reply from {url} stopped at the token limit (max_tokens 2400) with no "
                             f"content and no text: {HINT}")),
            ("a gateway's 502 inside a 200",
             {"error": {"message": "Provider returned error: upstream overloaded", "code": 502}},
             (ProviderError, "openai request to {url} failed after 1 attempt: provider error in a 200 "
                             "reply: Provider returned error: upstream overloaded (502)")),
            ("a rate limit inside a 200", {"error": {"message": "Rate limit exceeded", "code": 429}},
             (ProviderError, "openai request to {url} failed after 1 attempt: provider error in a 200 "
                             "reply: Rate limit exceeded (429)")),
            ("an error inside choices[0]",
             openai_completion({"content": ""}, finish_reason="error",
                               choice_extra={"error": {"message": "upstream connection reset", "code": 502}}),
             (ProviderError, "openai request to {url} failed after 1 attempt: provider error in a 200 "
                             "reply: upstream connection reset (502)")),
            ("out of credits inside a 200", {"error": {"message": "Insufficient credits", "code": 402}},
             (ProviderRequestError, "openai answered with an error: Insufficient credits (402)")),
            ("a refusal", openai_completion({"content": None, "refusal": "I cannot help with that."}),
             (ProviderError, "openai reply from {url} is unusable: the model refused: I cannot help with that.")),
            ("content filter", content(None, finish_reason="content_filter"),
             (ProviderError, "openai reply from {url} is unusable: the provider's content filter stopped the "
                             "reply (finish_reason: content_filter)")),
            ("no choices", {"id": "x", "object": "chat.completion", "choices": []},
             (ProviderError, "openai reply from {url} is unusable: expects a non-empty 'choices' list")),
        ]
        self.assertGreaterEqual(len(rows), 15)
        self.check_rows("openai", rows)

    def test_reasoning_is_kept_out_of_the_code_but_its_tokens_are_counted(self):
        self.server.script(json_reply(openai_completion(
            {"content": fence(MODULE), "reasoning_content": "long thoughts " * 10}, usage=(300, 900))))
        reply = self.client(provider="openai").generate("sys", "user")
        self.assertEqual((reply.code, reply.output_tokens, reply.reasoning_chars), (MODULE, 900, 140))
        self.assertNotIn("long thoughts", reply.code)

    def test_the_reply_record_says_which_block_was_taken(self):
        self.server.script(text_reply(fence(DRAFT.replace("def collect", "def kollect")) + fence(MODULE)
                                      + fence("print('usage')", "")))
        reply = self.client().generate("sys", "user")
        self.assertEqual(reply.to_dict()["extraction"], {
            "source": "fence", "block": 2, "blocks": 3, "from_reasoning": False, "reasoning_stripped": False,
            "reason": "the last block that compiles and defines act, collect and finalize"})


class TestProviderErrorsAndRetryNotices(ProviderTestCase):
    def test_an_error_inside_a_200_is_retried_and_each_retry_is_reported(self):
        notices = []
        self.server.script(gateway_error("Provider returned error: upstream overloaded", 502),
                           json_reply({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
                           text_reply(fence(MODULE)))
        client = self.client(backoff_base_s=1.0).with_retry_hook(notices.append)
        reply = client.generate("sys", "user")
        self.assertEqual((reply.code, reply.attempts), (MODULE, 3))
        self.assertEqual([(n.attempt, n.attempts, n.cause, n.wait_s, n.provider_code) for n in notices], [
            (1, 5, "provider error in a 200 reply: Provider returned error: upstream overloaded (502)", 0.75, 502),
            (2, 5, "provider error in a 200 reply: slow down (rate_limit_error)", 1.5, "rate_limit_error")])
        self.assertEqual(notices[0].provider_message, "Provider returned error: upstream overloaded")
        self.assertEqual(notices[0].describe("anthropic"),
                         "anthropic request attempt 1 of 5 failed: provider error in a 200 reply: Provider "
                         "returned error: upstream overloaded (502); retrying in 0.8 s")
        self.assertEqual(self.sleeps, [0.75, 1.5])

    def test_the_last_failure_carries_the_providers_message_and_code(self):
        self.server.script(*[gateway_error("upstream overloaded", 503)] * 2)
        with self.assertRaises(ProviderError) as caught:
            self.client(max_retries=1).generate("sys", "user")
        self.assertEqual((caught.exception.provider_message, caught.exception.provider_code),
                         ("upstream overloaded", 503))

    def test_http_errors_are_reported_to_the_hook_too_and_the_backoff_cap_holds(self):
        notices = []
        self.server.script(error_reply(529, "Overloaded"), error_reply(500, "boom"), text_reply("x = 1"))
        self.client(backoff_base_s=8.0, backoff_cap_s=5.0).with_retry_hook(notices.append).generate("s", "u")
        self.assertEqual([(n.cause, n.wait_s) for n in notices],
                         [("HTTP 529: Overloaded (overloaded_error)", 3.75), ("HTTP 500: boom (api_error)", 3.75)])

    def test_retry_settings_are_validated(self):
        table = [
            ({"max_retries": -1}, "max_retries: expects an integer in 0..20, actual: -1"),
            ({"max_retries": 21}, "max_retries: expects an integer in 0..20, actual: 21"),
            ({"backoff_cap_s": 0}, "backoff_cap_s: expects a number in (0, 600], actual: 0"),
        ]
        for changes, message in table:
            with self.subTest(changes=changes), self.assertRaises(ConfigError) as caught:
                LLMSettings(**changes).validated()
            self.assertEqual(str(caught.exception), message)

    def test_classifying_error_codes(self):
        for code in (408, 429, 500, 502, 503, 529, "502", "overloaded_error", "rate_limit_error", "server_error"):
            with self.subTest(code=code):
                self.assertTrue(is_retryable_code(code))
        for code in (400, 401, 402, 404, "invalid_request_error", "authentication_error", None):
            with self.subTest(code=code):
                self.assertFalse(is_retryable_code(code))


class TestPureHelpers(unittest.TestCase):
    def test_code_extraction(self):
        table = [
            ("```python\na = 1\n```", "a = 1\n"),
            ("text\n```py\na = 1\n```\nmore\n```python\nb = 2\n```", "b = 2\n"),
            ("```json\n{}\n```\n```python\nb = 2\n```", "b = 2\n"),
            ("```\nc = 3\n```", "c = 3\n"),
            ("d = 4", "d = 4\n"),
            ("```python\ne = 5\n", "e = 5\n"),
            ("```Python title\nf = 6\n```", "f = 6\n"),
        ]
        for text, code in table:
            with self.subTest(text=text):
                self.assertEqual(extract_code(text), code)

    def test_retry_after_reads_seconds_and_http_dates(self):
        self.assertEqual(retry_after_seconds("12"), 12.0)
        self.assertEqual(retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0), 60.0)
        self.assertIsNone(retry_after_seconds("soon"))
        self.assertIsNone(retry_after_seconds(None))

    def test_provider_error_messages_are_read_from_both_shapes(self):
        self.assertEqual(provider_error_message(b'{"type":"error","error":{"type":"x","message":"m"}}'), "m (x)")
        self.assertEqual(provider_error_message(b'{"error":{"message":"m","type":null,"code":"c"}}'), "m (c)")
        self.assertEqual(provider_error_message(b"<html>bad gateway</html>"), "<html>bad gateway</html>")


if __name__ == "__main__":
    unittest.main()

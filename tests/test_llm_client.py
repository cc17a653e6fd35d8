"""Specification of the LLM client (bgen/llm/client.py), spoken to a fake provider on loopback."""

from __future__ import annotations

import json
import unittest

from bgen.errors import ConfigError, ProviderError, ProviderRequestError
from bgen.llm.client import (
    DEFAULT_URLS, LLMClient, LLMSettings, auth_headers, backoff_delay, build_body,
    endpoint_url, extract_code, key_required, provider_error_message, retry_after_seconds,
)
from tests.fake_llm import FakeLLMServer, Reply, error_reply, slow_reply, text_reply

KEY = "sk-test-0123456789"
ENV = {"LLVPN_API_KEY": KEY}
SHORT_TIMEOUT_S = 0.3     # the one timeout a "slow provider" test waits for
POLICY = "def act(t, agent, world, fw, env, helpers):\n    return None\n"


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


class TestPureHelpers(unittest.TestCase):
    def test_code_extraction(self):
        table = [
            ("```python\na = 1\n```", "a = 1\n"),
            ("text\n```py\na = 1\n```\nmore\n```python\nb = 2\n```", "a = 1\n"),
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

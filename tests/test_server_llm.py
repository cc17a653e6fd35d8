"""Specification of the server's LLM path: its --provider/--provider-url/--model defaults, what
GET /health shows of them, and POST /run runs against replies of reasoning models and gateways.

One in-process server runs the real loop (episodes in worker processes, embedded backend) with
an OpenAI-compatible fake provider on loopback as its default LLM, the way a lab points the
server at its local model server once (no key: a loopback OpenAI-compatible server needs none).
"""

import asyncio
import unittest

from tests.fake_llm import FakeLLMServer, gateway_error, text_reply, think_wrapped
from tests.test_loop import FLOATY, GOOD, fenced
from tests.test_server_support import TIMEOUT, progress_messages, request, start_in_process, wait_until

MODEL = "qwen3-fake"
RUN = {"user_goal": "Reach the target.", "iterations": 2, "episodes": 1, "seeds": [1], "render": False,
       "max_steps": 3000, "success_threshold": 1.0}


class ServerLLMTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.provider = FakeLLMServer(api_key=None)
        cls.stop_server = start_in_process(cls, loop_module=None, provider="openai",
                                           provider_url=cls.provider.url + "/v1", model=MODEL)

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()
        cls.provider.close()

    def setUp(self):
        with self.provider.lock:
            self.provider.requests.clear()

    def tearDown(self):
        self.assertEqual([r.getMessage() for r in self.errors.records], [],
                         "the server logged an error (the catch-all must never fire in tests)")
        self.assertEqual(self.provider.problems, [])

    def run_to_end(self, body) -> tuple[str, list[dict]]:
        status, data, _ = request(self.port, "POST", "/run", body)
        self.assertEqual(status, 200, data)
        messages = asyncio.run(progress_messages(self.ws_port, data["run_id"]))
        return data["run_id"], messages


class TestServerLLMDefaults(ServerLLMTestCase):
    def test_health_shows_the_provider_url_host_and_model_in_force_and_no_key(self):
        status, body, _ = request(self.port, "GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(body["llm"], {"provider": "openai", "url_host": f"127.0.0.1:{self.provider.port}",
                                       "model": MODEL, "api_key_env": "LLVPN_API_KEY"})

    def test_a_request_naming_no_provider_uses_the_servers_and_its_fields_still_override(self):
        self.provider.script(text_reply(fenced(GOOD)), text_reply(fenced(GOOD)))
        run_id, messages = self.run_to_end({**RUN, "iterations": 1})
        self.assertEqual(messages[-1]["type"], "done", messages[-1])
        first = self.provider.requests[0]
        self.assertEqual((first.path, first.body["model"]), ("/v1/chat/completions", MODEL))
        record = request(self.port, "GET", f"/runs/{run_id}")[1]["request"]
        self.assertEqual((record["provider"], record["provider_url"], record["model"]),
                         ("openai", self.provider.url + "/v1", MODEL))
        run_id, messages = self.run_to_end({**RUN, "iterations": 1, "model": "other-model", "max_tokens": 900})
        self.assertEqual(messages[-1]["type"], "done", messages[-1])
        self.assertEqual((self.provider.requests[1].body["model"], self.provider.requests[1].body["max_tokens"]),
                         ("other-model", 900))


class TestServerLLMReplies(ServerLLMTestCase):
    def test_a_think_wrapped_reply_with_a_draft_runs_the_real_policy_in_the_first_iteration(self):
        self.provider.script(text_reply(think_wrapped(GOOD, FLOATY)))
        run_id, messages = self.run_to_end(RUN)
        self.assertEqual(messages[-1]["type"], "done", messages[-1])
        policy = next(m for m in messages if m["type"] == "policy")
        self.assertEqual((policy["iteration"], policy["ok"], policy["code"]), (0, True, GOOD))
        critique = next(m for m in messages if m["type"] == "critique")
        self.assertEqual((critique["iteration"], critique["aggregate"]["success_rate"]), (0, 1.0))
        self.assertEqual(messages[-1]["stopped_reason"], "success_threshold")
        self.assertEqual(len(self.provider.requests), 1)
        self.assertEqual(request(self.port, "GET", f"/code/{run_id}")[1]["code"], GOOD)

    def test_a_200_with_an_error_is_retried_once_and_the_warning_names_the_providers_message(self):
        self.provider.script(gateway_error("Provider returned error: upstream overloaded", 502),
                             text_reply(fenced(GOOD)))
        run_id, messages = self.run_to_end({**RUN, "iterations": 1, "llm_retries": 2,
                                            "llm_backoff_cap_s": 0.05})
        self.assertEqual(messages[-1]["type"], "done", messages[-1])
        retries = [m for m in messages if m["type"] == "warning" and m.get("kind") == "llm_retry"]
        self.assertEqual(len(retries), 1, messages)
        self.assertEqual((retries[0]["attempt"], retries[0]["attempts"], retries[0]["provider_code"]), (1, 3, 502))
        self.assertEqual(retries[0]["provider_message"], "Provider returned error: upstream overloaded")
        self.assertIn("Provider returned error: upstream overloaded", retries[0]["message"])
        critique = next(m for m in messages if m["type"] == "critique")
        self.assertEqual(critique["aggregate"]["success_rate"], 1.0)
        self.assertEqual(len(self.provider.requests), 2)
        wait_until(lambda: request(self.port, "GET", f"/runs/{run_id}")[1]["status"] == "done",
                   "the run to be done", TIMEOUT)


if __name__ == "__main__":
    unittest.main()

"""Specification of request validation (bgen.server.validation): what POST /run, query strings
and WebSocket paths accept, and the exact message for what they refuse."""

import unittest

from bgen.errors import BadRequest, NotFound
from bgen.server.validation import (DEFAULT_TARGETS, LLMDefaults, RunRequest, parse_code_query, parse_run_request,
                                    parse_subscribe, parse_ws_path)


class TestRunRequestDefaults(unittest.TestCase):
    def test_an_empty_body_gets_the_reference_defaults(self):
        request = parse_run_request({})
        self.assertEqual(request.iterations, 1)
        self.assertEqual(request.episodes, 3)
        self.assertEqual(request.seeds, (0, 1, 2))
        self.assertTrue(request.render)
        self.assertTrue(request.ws_proxy)
        self.assertEqual(request.provider, "anthropic")
        self.assertEqual(request.delta, 0.01)
        self.assertEqual(request.max_steps, 3000)        # 30 s of simulated time
        self.assertEqual(request.pov_min_dt_world, 0.05)
        self.assertEqual(request.success_threshold, 0.95)
        self.assertTrue(request.use_px4)
        self.assertEqual(request.scenario, "terrain")

    def test_a_missing_target_gets_the_scenario_default(self):
        for scenario in ("terrain", "wind_farm"):
            with self.subTest(scenario=scenario):
                request = parse_run_request({"scenario": scenario})
                self.assertEqual(request.target, DEFAULT_TARGETS[scenario])

    def test_the_server_flag_sets_the_ws_proxy_default(self):
        self.assertFalse(parse_run_request({}, default_ws_proxy=False).ws_proxy)
        self.assertTrue(parse_run_request({"ws_proxy": True}, default_ws_proxy=False).ws_proxy)

    def test_the_reference_test_body_is_accepted(self):
        request = parse_run_request({"user_goal": "Test run", "iterations": 1, "episodes": 0,
                                     "render": False, "policy_code": "def act(): pass"})
        self.assertEqual((request.episodes, request.seeds, request.render), (0, (), False))

    def test_empty_code_and_goal_mean_absent(self):
        request = parse_run_request({"policy_code": "", "existing_code": None, "user_goal": ""})
        self.assertIsNone(request.policy_code)
        self.assertIsNone(request.existing_code)
        self.assertEqual(request.user_goal, "Reach the target while minimizing collisions.")

    def test_to_json_is_plain_json(self):
        data = parse_run_request({"seeds": [4, 5], "target": [1, 2, 3]}).to_json()
        self.assertEqual((data["seeds"], data["target"]), ([4, 5], [1, 2, 3]))
        self.assertEqual(set(data), {f for f in RunRequest.__dataclass_fields__})


class TestTaskSpec(unittest.TestCase):
    def test_a_task_spec_is_validated_with_defaults_filled_and_kept(self):
        request = parse_run_request({"scenario": "wind_farm", "task_spec": {"checks": [
            {"kind": "orbit", "centre": "turbine_1", "min_radius": 5, "max_radius": 9}]}})
        self.assertEqual(request.task_spec, {"checks": [
            {"kind": "orbit", "centre": "turbine_1", "min_radius": 5, "max_radius": 9,
             "degrees": 360}]})
        self.assertEqual(request.to_json()["task_spec"], request.task_spec)
        self.assertTrue(request.derive_max_steps)

    def test_the_step_budget_is_derived_only_when_no_steps_were_asked_for(self):
        spec = {"checks": [{"kind": "reach", "point": "target"}]}
        cases = [({"task_spec": spec}, True), ({"task_spec": spec, "max_steps": 900}, False),
                 ({"task_spec": spec, "duration_seconds": 9}, False),
                 ({"policy_code": "x = 1"}, False), ({}, True)]
        for body, derived in cases:
            with self.subTest(body=body):
                self.assertEqual(parse_run_request(body).derive_max_steps, derived)


class TestStepsFromDuration(unittest.TestCase):
    def test_duration_seconds_over_delta_rounded_up(self):
        table = [({"duration_seconds": 30}, 3000), ({"duration_seconds": 1.005, "delta": 0.01}, 101),
                 ({"duration_seconds": 0.3, "delta": 0.1}, 3), ({"duration": 2, "delta": 0.5}, 4),
                 ({"duration_seconds": 0.001}, 1), ({"max_steps": 17, "duration_seconds": 99}, 17)]
        for body, steps in table:
            with self.subTest(body=body):
                self.assertEqual(parse_run_request(body).max_steps, steps)

    def test_too_many_steps_from_a_duration_is_refused(self):
        with self.assertRaises(BadRequest) as caught:
            parse_run_request({"duration_seconds": 86400, "delta": 0.001})
        self.assertEqual(caught.exception.message,
                         "duration_seconds: 86400 s at delta 0.001 is 86400000 steps, exceeds limit of 1000000")


class TestProviderUrlsAndTheKey(unittest.TestCase):
    def test_a_url_the_request_chose_gets_no_key_and_the_servers_own_does(self):
        defaults = LLMDefaults("openai", "http://127.0.0.1:11434/v1", "qwen3")
        own = parse_run_request({"provider": "openai"}, llm_defaults=defaults)
        chosen = parse_run_request({"provider_url": "http://127.0.0.1:18095/steal"},
                                   llm_defaults=defaults)
        same = parse_run_request({"provider_url": "http://127.0.0.1:11434/v1"}, llm_defaults=defaults)
        gateway = parse_run_request({"provider": "anthropic",
                                     "provider_url": "https://llvpn.io/v1/service/1bd998cc32e3e5d34b2f09ec104f7439e0498c22358cdf8c1c11a258c3157f84"},
                                    llm_defaults=defaults)
        self.assertEqual((own.send_key, chosen.send_key, same.send_key, gateway.send_key),
                         (True, False, True, True))

    def test_stored_urls_carry_no_credentials(self):
        request = parse_run_request({"provider_url": "http://127.0.0.1:9/v1?api-key=QSECRET"})
        self.assertEqual(request.to_json()["provider_url"], "http://127.0.0.1:9/v1?api-key=***")
        self.assertNotIn("QSECRET", str(request.to_json()))
        with self.assertRaises(BadRequest) as caught:      # user info is refused, not echoed
            parse_run_request({"provider_url": "http://lab:hunter2@127.0.0.1:9/v1?api-key=Q"})
        self.assertNotIn("hunter2", caught.exception.message)

    def test_the_loop_config_of_a_chosen_url_sends_no_key(self):
        from bgen.orchestrator import loop
        from bgen.llm.client import LLMSettings
        from bgen.runner.episode import EpisodeConfig
        from bgen.server.runs import LoopBinding, ManagerSettings, build_loop_config
        request = parse_run_request({"provider_url": "http://127.0.0.1:18095/steal"})
        config = build_loop_config(LoopBinding(loop.run_loop, loop.LoopConfig, EpisodeConfig, LLMSettings),
                                   request, ManagerSettings(), render=False, render_ports=None)
        self.assertEqual(config.llm.auth, "none")


class TestSeeds(unittest.TestCase):
    def test_seeds_set_the_episode_count(self):
        request = parse_run_request({"seeds": [7, 9]})
        self.assertEqual((request.seeds, request.episodes), ((7, 9), 2))

    def test_episodes_must_match_the_seeds(self):
        with self.assertRaises(BadRequest) as caught:
            parse_run_request({"seeds": [7, 9], "episodes": 3})
        self.assertEqual(caught.exception.message, "episodes: expects the number of seeds (2), actual: 3")


class TestRunRequestRefusals(unittest.TestCase):
    TABLE = [
        ([], None, "request body: expects a JSON object, actual: array"),
        ("x", None, "request body: expects a JSON object, actual: string"),
        ({"iterations": "ten"}, "iterations", "iterations: expects an integer in 1..50, actual: 'ten'"),
        ({"iterations": 0}, "iterations", "iterations: expects an integer in 1..50, actual: 0"),
        ({"iterations": True}, "iterations", "iterations: expects an integer in 1..50, actual: True"),
        ({"iterations": 2.5}, "iterations", "iterations: expects an integer in 1..50, actual: 2.5"),
        ({"episodes": -1}, "episodes", "episodes: expects an integer in 0..64, actual: -1"),
        ({"episodes": 10**9}, "episodes", "episodes: expects an integer in 0..64, actual: 1000000000"),
        ({"render": "yes"}, "render", "render: expects true or false, actual: 'yes'"),
        ({"ws_proxy": 1}, "ws_proxy", "ws_proxy: expects true or false, actual: 1"),
        ({"delta": 0}, "delta", "delta: expects a number in [0.0001, 1], actual: 0"),
        ({"delta": 1e-308}, "delta", "delta: expects a number in [0.0001, 1], actual: 1e-308"),
        ({"delta": "0.01"}, "delta", "delta: expects a number in [0.0001, 1], actual: '0.01'"),
        ({"max_steps": 0}, "max_steps", "max_steps: expects an integer in 1..1000000, actual: 0"),
        ({"duration_seconds": -5}, "duration_seconds",
         "duration_seconds: expects a number in (0, 86400], actual: -5"),
        ({"success_threshold": 1.5}, "success_threshold",
         "success_threshold: expects a number in [0, 1], actual: 1.5"),
        ({"pov_min_dt_world": None}, "pov_min_dt_world",
         "pov_min_dt_world: expects a number in [0, 60], actual: None"),
        ({"provider": "mistral"}, "provider", "provider: expects one of anthropic, openai, actual: 'mistral'"),
        ({"provider": 3}, "provider", "provider: expects one of anthropic, openai, actual: 3"),
        ({"provider_url": "ftp://x"}, "provider_url",
         "provider_url: expects an http:// or https:// URL, actual: 'ftp://x'"),
        ({"provider_url": "http://[::1"}, "provider_url",
         "provider_url: expects an http:// or https:// URL, actual: 'http://[::1'"),
        ({"provider_url": "http://127.0.0.1:1/v1\r\nX-Evil: 1"}, "provider_url",
         "provider_url: expects an http:// or https:// URL, actual: 'http://127.0.0.1:1/v1\\r\\nX-Evil: 1'"),
        ({"provider_url": "http://127.0.0.1:99999/v1"}, "provider_url",
         "provider_url: expects an http:// or https:// URL, actual: 'http://127.0.0.1:99999/v1'"),
        ({"provider_url": "http://a..b/v1"}, "provider_url",
         "provider_url: expects an http:// or https:// URL, actual: 'http://a..b/v1'"),
        ({"provider_url": "http://h:0/v1"}, "provider_url",
         "provider_url: expects an http:// or https:// URL, actual: 'http://h:0/v1'"),
        ({"provider_url": "http://h:/v1"}, "provider_url",
         "provider_url: expects an http:// or https:// URL, actual: 'http://h:/v1'"),
        ({"provider_url": "http://lab:hunter2@127.0.0.1:9/v1"}, "provider_url",
         "provider_url: expects no user info (user:password@): the key goes in a header, "
         "actual: 'http://***@127.0.0.1:9/v1'"),
        ({"scenario": "moon"}, "scenario", "scenario: expects one of terrain, wind_farm, actual: 'moon'"),
        ({"target": [1, 2]}, "target", "target: expects [x, y, z] (3 numbers within +-1000000), actual: [1, 2]"),
        ({"target": "60,60,-20"}, "target",
         "target: expects [x, y, z] (3 numbers within +-1000000), actual: '60,60,-20'"),
        ({"target": [3000000000, 0, 0]}, "target",
         "target: expects [x, y, z] (3 numbers within +-1000000), actual: [3000000000, 0, 0]"),
        ({"seeds": []}, "seeds", "seeds: expects an array of 1..64 integers, actual: []"),
        ({"seeds": [1, -1]}, "seeds", "seeds: expects integers in 0..4294967295, actual: -1"),
        ({"seeds": [1, 1]}, "seeds", "seeds: expects distinct seeds, actual: [1, 1]"),
        ({"policy_code": 42}, "policy_code", "policy_code: expects a string or null, actual: integer"),
        ({"policy_code": "x" * 200_001}, "policy_code", "policy_code: 200001 characters exceeds limit of 200000"),
        ({"px4": True, "use_px4": False}, "px4", "px4: disagrees with use_px4 (True vs False); send one of them"),
        ({"task_spec": [1]}, "task_spec", "task_spec: expects an object with 'checks', actual: array"),
        ({"task_spec": {"checks": [{"kind": "reach", "point": "target", "radius": -1}]}},
         "task_spec.checks[0].radius", "task_spec.checks[0].radius: expects a positive number, "
                                       "actual: -1"),
        ({"task_spec": {"checks": [{"kind": "orbit", "centre": "turbine_1", "min_radius": 5,
                                    "max_radius": 9}]}},
         "task_spec.checks[0].centre", "task_spec.checks[0].centre: unknown landmark 'turbine_1'; "
                                       "this scenario has start, target"),
        ({"iteratons": 2}, "iteratons", "'iteratons': unknown field; expects one of user_goal, iterations, "
         "episodes, seeds, render, ws_proxy, existing_code, policy_code, max_steps, duration_seconds, "
         "duration, delta, provider, provider_url, model, pov_min_dt_world, success_threshold, px4, "
         "use_px4, target, scenario, candidates, holdout_seeds, llm_retries, llm_backoff_cap_s, max_tokens, task_spec"),
        ({"candidates": 0}, "candidates", "candidates: expects an integer in 1..16, actual: 0"),
        ({"holdout_seeds": -1}, "holdout_seeds", "holdout_seeds: expects an integer in 0..64, actual: -1"),
        ({"llm_retries": -1}, "llm_retries", "llm_retries: expects an integer in 0..20, actual: -1"),
        ({"llm_retries": "3"}, "llm_retries", "llm_retries: expects an integer in 0..20, actual: '3'"),
        ({"llm_backoff_cap_s": 0}, "llm_backoff_cap_s",
         "llm_backoff_cap_s: expects a number in (0, 600], actual: 0"),
        ({"llm_backoff_cap_s": 601}, "llm_backoff_cap_s",
         "llm_backoff_cap_s: expects a number in (0, 600], actual: 601"),
        ({"max_tokens": 0}, "max_tokens", "max_tokens: expects an integer in 1..200000, actual: 0"),
    ]

    def test_each_bad_input_names_its_field_and_what_came(self):
        for body, field, message in self.TABLE:
            with self.subTest(body=str(body)[:60]):
                with self.assertRaises(BadRequest) as caught:
                    parse_run_request(body)
                self.assertEqual(caught.exception.message, message)
                self.assertEqual(caught.exception.field, field)
                self.assertEqual(caught.exception.status, 400)

    def test_an_integer_too_large_for_a_float_is_a_400_naming_its_field(self):
        huge = 10 ** 400
        reach = {"kind": "reach", "point": "target"}
        cases = [({"delta": huge}, "delta"), ({"duration_seconds": huge}, "duration_seconds"),
                 ({"success_threshold": huge}, "success_threshold"),
                 ({"pov_min_dt_world": huge}, "pov_min_dt_world"),
                 ({"llm_backoff_cap_s": huge}, "llm_backoff_cap_s"),
                 ({"target": [huge, 0, 0]}, "target"),
                 ({"task_spec": {"checks": [{"kind": "standoff", "min_m": huge}, reach]}},
                  "task_spec.checks[0].min_m"),
                 ({"task_spec": {"checks": [{**reach, "radius": huge}]}}, "task_spec.checks[0].radius"),
                 ({"task_spec": {"checks": [{**reach, "point": [huge, 0, 0]}]}},
                  "task_spec.checks[0].point"),
                 ({"task_spec": {"checks": [{**reach, "point": {"from": "start", "offset": [0, huge, 0]}}]}},
                  "task_spec.checks[0].point.offset")]
        for body, field in cases:
            with self.subTest(field=field):
                with self.assertRaises(BadRequest) as caught:
                    parse_run_request(body)
                self.assertEqual((caught.exception.field, caught.exception.status), (field, 400))

    def test_a_credential_in_the_body_is_refused_without_echoing_it(self):
        for name in ("api_key", "apiKey", "ANTHROPIC_API_KEY", "token", "authorization"):
            with self.subTest(name=name):
                with self.assertRaises(BadRequest) as caught:
                    parse_run_request({name: "sk-secret-value"})
                self.assertNotIn("sk-secret-value", caught.exception.message)
                self.assertIn("credentials are not accepted", caught.exception.message)

    def test_llm_retry_and_limit_fields_are_taken_and_default_to_none(self):
        request = parse_run_request({"llm_retries": 0, "llm_backoff_cap_s": 2.5, "max_tokens": 8000})
        self.assertEqual((request.llm_retries, request.llm_backoff_cap_s, request.max_tokens), (0, 2.5, 8000))
        request = parse_run_request({})
        self.assertEqual((request.llm_retries, request.llm_backoff_cap_s, request.max_tokens), (None, None, None))

    def test_the_servers_llm_defaults_fill_what_the_request_leaves_out(self):
        defaults = LLMDefaults("openai", "http://127.0.0.1:11434/v1", "qwen3")
        table = [
            ({}, ("openai", "http://127.0.0.1:11434/v1", "qwen3")),
            ({"model": "llama3.1"}, ("openai", "http://127.0.0.1:11434/v1", "llama3.1")),
            ({"provider_url": "https://gw.example/v1"}, ("openai", "https://gw.example/v1", "qwen3")),
            ({"provider": "anthropic"}, ("anthropic", None, "claude-3-5-sonnet-20241022")),
        ]
        for body, expected in table:
            with self.subTest(body=body):
                request = parse_run_request(body, llm_defaults=defaults)
                self.assertEqual((request.provider, request.provider_url, request.model), expected)

    def test_providers_come_from_the_caller(self):
        self.assertEqual(parse_run_request({"provider": "Local"}, providers=("local",)).provider, "local")


class TestQueries(unittest.TestCase):
    def test_code_query(self):
        self.assertEqual(parse_code_query(""), (None, False))
        self.assertEqual(parse_code_query("iteration=3"), (3, False))
        self.assertEqual(parse_code_query("best=1"), (None, True))
        self.assertEqual(parse_code_query("best=0"), (None, False))

    def test_bad_code_queries(self):
        table = [("iteration=-1", "iteration: expects an integer in 0..50000, actual: '-1'"),
                 ("iteration=x", "iteration: expects an integer in 0..50000, actual: 'x'"),
                 ("best=maybe", "best: expects 1 or 0 (or true/false, yes/no), actual: 'maybe'"),
                 ("best=1&iteration=2", "best: expects either iteration or best, not both"),
                 ("latest=1", "'latest': unknown query parameter; expects iteration, best")]
        for query, message in table:
            with self.subTest(query=query):
                with self.assertRaises(BadRequest) as caught:
                    parse_code_query(query)
                self.assertEqual(caught.exception.message, message)


class TestWebSocketPaths(unittest.TestCase):
    def test_progress_and_render_paths(self):
        target = parse_ws_path("/ws/progress/ab12?since=42")
        self.assertEqual((target.kind, target.run_id, target.since, target.topic),
                         ("progress", "ab12", 42, "progress:ab12"))
        target = parse_ws_path("/ws/render/ab12/pov_world_0?format=binary")
        self.assertEqual((target.kind, target.channel, target.format, target.topic),
                         ("render", "pov_world_0", "binary", "render:ab12:pov_world_0"))
        self.assertEqual(parse_ws_path("/ws/render/ab12/world").format, "base64")

    def test_paths_without_a_topic_wait_for_a_subscribe_message(self):
        for path in ("/", "/ws", "/?x=1"):
            with self.subTest(path=path):
                self.assertIsNone(parse_ws_path(path))

    def test_bad_paths(self):
        table = [("/ws/progress/../../etc", NotFound), ("/ws/render/ab12/sky", NotFound),
                 ("/ws/render/ab12/world?format=png", BadRequest), ("/ws/progress/ab12?since=x", BadRequest),
                 ("/ws/other/ab12", NotFound)]
        for path, error in table:
            with self.subTest(path=path):
                with self.assertRaises(error):
                    parse_ws_path(path)

    def test_subscribe_messages(self):
        self.assertEqual(parse_subscribe({"type": "subscribe", "topic": "progress:ab12"}).topic,
                         "progress:ab12")
        self.assertEqual(parse_subscribe({"type": "subscribe", "topic": "render:ab12:agents"}).channel,
                         "agents")
        with self.assertRaises(BadRequest) as caught:
            parse_subscribe({"type": "subscribe", "topic": "logs:ab12"})
        self.assertEqual(caught.exception.message,
                         "topic: expects progress:<run_id> or render:<run_id>:<channel>, actual: 'logs:ab12'")


if __name__ == "__main__":
    unittest.main()

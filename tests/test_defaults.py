"""One table of defaults: iterate, run_policy, the server's flags and POST /run fields, their
``--help`` and every flag/field table of README.md and docs/ show the same value."""

import unittest
from pathlib import Path

import bgen_server
from bgen import defaults as D
from bgen.orchestrator import iterate
from bgen.runner import run_policy
from bgen.server.validation import parse_run_request
from tests.markdown import row_of, tables

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# front door -> (parser, the docs page whose flag table describes it)
COMMANDS = {
    "iterate": (iterate.build_parser(), "docs/llm-and-loop.md"),
    "run_policy": (run_policy.build_parser(), "docs/runner.md"),
    "server": (bgen_server.build_parser(), "docs/server.md"),
}
# Flags every front door that runs episodes must have, with the table's default.
SHARED = {"iterate": ("iterations", "episodes", "seed_start", "max_steps", "success_threshold",
                      "workers", "candidates", "holdout_seeds", "max_repairs", "provider", "model",
                      "max_tokens", "temperature", "llm_timeout", "llm_retries", "llm_backoff_cap",
                      "executor"),
          "run_policy": ("episodes", "seed_start", "max_steps", "delta", "workers", "act_budget_s",
                         "executor"),
          "server": ("workers", "provider", "model", "api_key_env", "executor")}
# POST /run fields whose default is the table's (the field name is the table's key).
SERVER_FIELDS = ("iterations", "episodes", "delta", "success_threshold",
                 "max_tokens", "llm_retries")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def plain(text: str) -> str:
    return text.replace("`", "").strip()


def flag_table(text: str):
    """The first table whose header starts with ``flag | default``."""
    for table in tables(text):
        if table.header[:2] == ["flag", "default"]:
            return table
    raise AssertionError("no | flag | default | table")


def section(title: str) -> str:
    return README.split(title, 1)[1].split("\n## ", 1)[0]


class TestTheTableOfDefaults(unittest.TestCase):
    def test_the_success_threshold_is_one_value_on_the_command_line_and_on_the_server(self):
        cli = iterate.build_parser().parse_args([]).success_threshold
        server = parse_run_request({}).success_threshold
        self.assertEqual((cli, server), (D.value("success_threshold"),) * 2)

    def test_every_command_takes_its_defaults_from_the_table(self):
        for command, (parser, _) in COMMANDS.items():
            actions = {a.dest: a for a in parser._actions}
            for name in SHARED[command]:
                with self.subTest(command=command, flag=flag(name)):
                    self.assertIn(name, actions, f"{command} has no {flag(name)}")
                    self.assertEqual(actions[name].default, D.value(name))

    def test_every_help_line_shows_the_tables_default(self):
        for command, (parser, _) in COMMANDS.items():
            for action in parser._actions:
                if action.dest in D.DEFAULTS and action.option_strings:
                    with self.subTest(command=command, flag=action.option_strings[0]):
                        self.assertIn(f"(default {D.shown(action.dest)})", action.help)

    def test_every_flag_that_takes_a_value_says_its_default_in_help(self):
        import argparse
        for command, (parser, _) in COMMANDS.items():
            for action in parser._actions:
                if not action.option_strings or action.help == argparse.SUPPRESS or action.nargs == 0:
                    continue
                with self.subTest(command=command, flag=action.option_strings[0]):
                    self.assertRegex(action.help, r"default|required")

    def test_every_docs_flag_table_shows_the_tables_default(self):
        for command, (parser, page) in COMMANDS.items():
            table = flag_table((ROOT / page).read_text(encoding="utf-8"))
            for name in SHARED[command]:
                with self.subTest(page=page, flag=flag(name)):
                    row = row_of(table, flag(name))
                    self.assertIsNotNone(row, f"{page} has no row for {flag(name)}")
                    self.assertEqual(plain(row[1]), D.shown(name))

    def test_the_readme_server_table_shows_the_tables_default(self):
        table = flag_table(section("## The server"))
        for name in SHARED["server"]:
            with self.subTest(flag=flag(name)):
                self.assertEqual(plain(row_of(table, flag(name))[1]), D.shown(name))

    def test_the_readme_flag_lists_of_the_clis_show_the_tables_default(self):
        for command, title in (("iterate", "## Iterating from the command line"),
                               ("run_policy", "## Running a policy")):
            text = " ".join(section(title).split())
            for name in SHARED[command]:
                if name in ("executor",):
                    continue            # described with the Dask executor
                with self.subTest(command=command, flag=flag(name)):
                    wanted = f"`{flag(name)}` ({D.shown(name)}"
                    self.assertTrue(wanted in text, f"README names no {wanted}")

    def test_post_run_fields_default_to_the_table_and_docs_server_says_so(self):
        request = parse_run_request({})
        fields = flag_table_like(ROOT / "docs/server.md", "field")
        for name in SERVER_FIELDS:
            with self.subTest(field=name):
                value = getattr(request, name)
                if value is not None:           # None: the LLM client's default, the table's
                    self.assertEqual(value, D.value(name))
                cell = plain(row_of(fields, name)[2])
                self.assertTrue(cell == D.shown(name) or cell.startswith(D.shown(name) + " ("), cell)

    def test_the_llm_client_defaults_are_the_tables(self):
        from bgen.llm import client
        self.assertEqual((client.DEFAULT_MAX_TOKENS, client.DEFAULT_TEMPERATURE, client.DEFAULT_MODEL,
                          client.DEFAULT_MAX_RETRIES, client.DEFAULT_BACKOFF_CAP_S),
                         (D.value("max_tokens"), D.value("temperature"), D.MODELS["anthropic"],
                          D.value("llm_retries"), D.value("llm_backoff_cap")))

    def test_iterate_asks_each_provider_for_its_own_default_model(self):
        for provider, model in (("anthropic", D.MODELS["anthropic"]), ("openai", D.MODELS["openai"]),
                                ("openai-direct", D.MODELS["openai"])):
            with self.subTest(provider=provider):
                args = iterate.build_parser().parse_args(["--provider", provider, "--no-api-key"])
                self.assertEqual(iterate.llm_settings(args).model, model)


def flag_table_like(path: Path, first: str):
    for table in tables(path.read_text(encoding="utf-8")):
        if table.header and table.header[0] == first and "default" in table.header:
            return table
    raise AssertionError(f"{path.name}: no table headed {first!r} with a default column")


if __name__ == "__main__":
    unittest.main()

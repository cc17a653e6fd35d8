"""The escape corpus: every file under tests/escape_corpus/<layer>/ is one attack (or, under
benign/, one ordinary policy that must keep working). Adding a case is adding one file.

Each file starts with a header:

    # tries: what the attack attempts
    # expect: <outcome>
    # seeds: 1 2                      (optional, worker cases; default: 1)
    # config: max_steps=50            (optional EpisodeConfig overrides, worker cases)
    # known-gap: why                  (optional: a hole another layer must close; the case
                                       must fail its expectation until then, like
                                       unittest.expectedFailure)

Outcomes, and where each is checked:

    rejected rule=<rule>              validate_source() in this process (nothing executes)
    load-error [rule=<rule>]          check_policy() in a real worker: the body ran and failed
    episode-reason=<r>[|<r>...]       run_episodes() in real workers: every summary's reason
    runs                              same as episode-reason=max_steps|success

``@CANARY@`` and ``@SECRET_FILE@`` in a case are replaced by a per-case canary path and the
path of a file holding a secret that is also planted in this process's environment. After
every case: the canary does not exist, the secret appears in no output (errors, summaries,
events, episode files), and this process and a bystander child are alive.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest
from dataclasses import dataclass, field
from pathlib import Path

from bgen.errors import PolicyLoadError
from bgen.runner.sandbox import RULES, validate_source
from tests.timing import TIME_SCALE

CORPUS_DIR = Path(__file__).resolve().parent / "escape_corpus"
LAYERS = ("validator", "namespace", "resources", "process", "benign")
SECRET_ENV = "BGEN_CORPUS_SECRET"
#: One constant scales every time limit of the corpus run.
CASE_TIMEOUT_S = 30.0 * TIME_SCALE
MAX_EPISODE_FILES_BYTES = 4 * 1024 * 1024
PARALLEL = 2

EPISODE_DEFAULTS = dict(max_steps=30, act_budget_s=0.5 * TIME_SCALE,
                        episode_deadline_s=8.0 * TIME_SCALE, stall_grace_s=1.0 * TIME_SCALE,
                        memory_limit_mb=768, backend="embedded")
REASONS = {"success", "max_steps", "policy_error", "timeout", "memory", "crashed",
           "terminated", "teleport", "sim_error", "tampered"}


@dataclass
class Case:
    layer: str
    name: str
    path: Path
    tries: str
    kind: str                      # "rejected" | "load-error" | "episode"
    rule: str | None = None
    reasons: frozenset = frozenset()
    seeds: tuple = (1,)
    config: dict = field(default_factory=dict)
    known_gap: str | None = None   # a hole another layer must close; the case must still fail
    source: str = ""

    @property
    def label(self) -> str:
        return f"{self.layer}/{self.name}"


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_case(path: Path) -> Case:
    """Read one corpus file's header; a malformed header is an error naming the file."""
    text = path.read_text(encoding="utf-8")
    header = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"#\s*(tries|expect|seeds|config|known-gap):\s*(.*)$", line)
        if match:
            header[match.group(1)] = match.group(2).strip()
    where = f"{path.parent.name}/{path.name}"
    if "tries" not in header or "expect" not in header:
        raise ValueError(f"{where}: header needs '# tries:' and '# expect:' lines")
    case = Case(layer=path.parent.name, name=path.stem, path=path, tries=header["tries"],
                kind="", source=text)
    expect = header["expect"]
    if expect.startswith("rejected"):
        match = re.fullmatch(r"rejected rule=([a-z-]+)", expect)
        if not match or match.group(1) not in RULES:
            raise ValueError(f"{where}: expects 'rejected rule=<one of RULES>', got {expect!r}")
        case.kind, case.rule = "rejected", match.group(1)
    elif expect.startswith("load-error"):
        match = re.fullmatch(r"load-error(?: rule=([a-z-]+))?", expect)
        if not match or (match.group(1) and match.group(1) not in RULES):
            raise ValueError(f"{where}: expects 'load-error [rule=<rule>]', got {expect!r}")
        case.kind, case.rule = "load-error", match.group(1)
    elif expect == "runs" or expect.startswith("episode-reason="):
        reasons = {"max_steps", "success"} if expect == "runs" else \
            set(expect.split("=", 1)[1].split("|"))
        if not reasons <= REASONS:
            raise ValueError(f"{where}: unknown reasons {sorted(reasons - REASONS)}")
        case.kind, case.reasons = "episode", frozenset(reasons)
    else:
        raise ValueError(f"{where}: unknown expectation {expect!r}")
    case.known_gap = header.get("known-gap")
    if "seeds" in header:
        case.seeds = tuple(int(s) for s in header["seeds"].split())
    for item in header.get("config", "").split():
        key, _, value = item.partition("=")
        case.config[key] = _parse_value(value)
    return case


def load_corpus() -> list[Case]:
    return [parse_case(path) for layer in LAYERS
            for path in sorted((CORPUS_DIR / layer).glob("*.py"))]


class Outcome:
    """What one case produced: a description of the result and every text it emitted."""

    def __init__(self):
        self.result = None
        self.texts: list[str] = []


def _episode_config(case: Case):
    from bgen.runner.worker import EpisodeConfig
    return EpisodeConfig(**{**EPISODE_DEFAULTS, **case.config})


def run_case(case: Case, source: str, workdir: Path) -> Outcome:
    """Run one case the way its expectation says (see the module docstring)."""
    outcome = Outcome()
    if case.kind == "rejected":
        try:
            validate_source(source)
            outcome.result = ("validated", None)
        except PolicyLoadError as error:
            outcome.result = ("rejected", error.rule)
            outcome.texts.append(str(error))
        return outcome
    from bgen.runner import worker
    config = _episode_config(case)
    if case.kind == "load-error":
        try:
            worker.check_policy(source, backend=config.backend, timeout_s=CASE_TIMEOUT_S / 2,
                                config=config)
            outcome.result = ("loaded", None)
        except PolicyLoadError as error:
            outcome.result = ("load-error", error.rule)
            outcome.texts.append(str(error))
        return outcome
    events: list[dict] = []
    outdir = workdir / "episodes"
    summaries = worker.run_episodes(source, list(case.seeds), config, outdir, workers=1,
                                    on_event=events.append)
    outcome.result = ("episode", tuple(s.get("reason") for s in summaries))
    outcome.texts.append(json.dumps(summaries, default=str))
    outcome.texts.append(json.dumps(events, default=str))
    return outcome


def _episode_files(workdir: Path) -> list[Path]:
    return [p for p in (workdir / "episodes").rglob("*") if p.is_file()] \
        if (workdir / "episodes").exists() else []


class EscapeCorpus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cases = load_corpus()
        cls.tmp = Path(tempfile.mkdtemp(prefix="bgen-corpus-"))
        cls.secret = "corpus-secret-" + secrets.token_hex(16)
        cls.secret_file = cls.tmp / "secret.txt"
        cls.secret_file.write_text(cls.secret + "\n", encoding="utf-8")
        cls.saved_env = os.environ.get(SECRET_ENV)
        os.environ[SECRET_ENV] = cls.secret
        # A child of ours that an attack on "the parent's process group" would also hit.
        cls.bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                         stdin=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.bystander.kill()
        cls.bystander.wait(timeout=CASE_TIMEOUT_S)
        if cls.saved_env is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = cls.saved_env
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def prepare(self, case: Case) -> tuple[str, Path, Path]:
        workdir = self.tmp / case.layer / case.name
        workdir.mkdir(parents=True, exist_ok=True)
        canary = workdir / "canary"
        source = case.source.replace("@CANARY@", str(canary)).replace(
            "@SECRET_FILE@", str(self.secret_file))
        return source, workdir, canary

    def test_corpus_has_every_layer_and_enough_cases(self):
        counts = {layer: sum(c.layer == layer for c in self.cases) for layer in LAYERS}
        print(f"\nescape corpus: {len(self.cases)} cases; "
              + ", ".join(f"{layer} {n}" for layer, n in counts.items()), file=sys.stderr)
        self.assertGreaterEqual(len(self.cases) - counts["benign"], 100)
        self.assertGreaterEqual(counts["benign"], 20)
        for layer in LAYERS:
            with self.subTest(layer=layer):
                self.assertGreater(counts[layer], 0)

    def test_only_known_layers_exist(self):
        found = {p.name for p in CORPUS_DIR.iterdir() if p.is_dir()}
        self.assertEqual(found - set(LAYERS), set())

    def test_every_case_ends_as_expected_and_nothing_escapes(self):
        prepared = [(case, *self.prepare(case)) for case in self.cases]
        local = [p for p in prepared if p[0].kind == "rejected"]
        remote = [p for p in prepared if p[0].kind != "rejected"]
        results = {}
        for case, source, workdir, _ in local:
            results[case.label] = run_case(case, source, workdir)
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            futures = {pool.submit(run_case, case, source, workdir): case
                       for case, source, workdir, _ in remote}
            for future in concurrent.futures.as_completed(futures, timeout=CASE_TIMEOUT_S * 10):
                case = futures[future]
                try:
                    results[case.label] = future.result()
                except Exception as error:  # reported per case below
                    results[case.label] = error
        for case, source, workdir, canary in prepared:
            with self.subTest(case=case.label):
                outcome = results[case.label]
                if isinstance(outcome, Exception):
                    self.fail(f"{case.label} ({case.tries}): harness error {outcome!r}")
                self.check_nothing_escaped(case, outcome, workdir, canary)
                if case.known_gap is None:
                    self.check_expectation(case, outcome)
                    continue
                # Like expectedFailure: the gap must still show; once closed, drop the line.
                with self.assertRaises(AssertionError,
                                       msg=f"{case.label}: the known gap is closed; remove its "
                                           "'# known-gap:' line"):
                    self.check_expectation(case, outcome)
                print(f"\nknown gap: {case.label}: {case.known_gap}", file=sys.stderr)
        self.assertIsNone(self.bystander.poll(), "the bystander process was killed")

    def check_expectation(self, case: Case, outcome: Outcome):
        kind, detail = outcome.result
        what = f"{case.label} ({case.tries})"
        if case.kind in ("rejected", "load-error"):
            self.assertEqual(kind, case.kind, f"{what}: expected {case.kind}, got {kind} "
                                              f"{outcome.texts[:1]}")
            if case.rule is not None:
                self.assertEqual(detail, case.rule, f"{what}: {outcome.texts[:1]}")
        else:
            self.assertEqual(kind, "episode", what)
            for reason in detail:
                self.assertIn(reason, case.reasons,
                              f"{what}: reason {reason!r}; summary: {outcome.texts[0][:1500]}")

    def check_nothing_escaped(self, case: Case, outcome: Outcome, workdir: Path, canary: Path):
        what = f"{case.label} ({case.tries})"
        self.assertFalse(canary.exists(), f"{what}: the canary file was created")
        files = _episode_files(workdir)
        total = sum(p.stat().st_size for p in files)
        self.assertLessEqual(total, MAX_EPISODE_FILES_BYTES, f"{what}: episode files too big")
        texts = list(outcome.texts) + [p.read_text("utf-8", "replace") for p in files]
        for text in texts:
            self.assertNotIn(self.secret, text, f"{what}: the secret leaked")


class HarnessCanFail(EscapeCorpus):
    """The checks that prove nothing escaped must be able to fail."""

    def test_every_case_ends_as_expected_and_nothing_escapes(self):
        pass  # inherited: runs once, in EscapeCorpus

    def test_corpus_has_every_layer_and_enough_cases(self):
        pass

    def test_only_known_layers_exist(self):
        pass

    def fake_case(self, name: str = "fake") -> Case:
        return Case(layer="process", name=name, path=CORPUS_DIR, tries="nothing",
                    kind="episode", reasons=frozenset({"max_steps"}))

    def test_a_leaked_secret_is_detected(self):
        case = self.fake_case("leak")
        _, workdir, canary = self.prepare(case)
        outcome = Outcome()
        outcome.result = ("episode", ("max_steps",))
        outcome.texts.append(f"printed: {self.secret}")
        with self.assertRaises(AssertionError) as caught:
            self.check_nothing_escaped(case, outcome, workdir, canary)
        self.assertIn("the secret leaked", str(caught.exception))

    def test_a_created_canary_is_detected(self):
        case = self.fake_case("canary")
        _, workdir, canary = self.prepare(case)
        canary.touch()
        with self.assertRaises(AssertionError) as caught:
            self.check_nothing_escaped(case, Outcome(), workdir, canary)
        self.assertIn("the canary file was created", str(caught.exception))

    def test_a_wrong_reason_is_detected(self):
        outcome = Outcome()
        outcome.result = ("episode", ("timeout",))
        outcome.texts.append("{}")
        with self.assertRaises(AssertionError):
            self.check_expectation(self.fake_case(), outcome)


class CorpusHeaders(unittest.TestCase):
    def test_headers_are_parsed(self):
        path = Path(tempfile.mkdtemp()) / "validator" / "x.py"
        path.parent.mkdir()
        try:
            cases = {
                "# tries: a\n# expect: rejected rule=import\nimport os\n":
                    ("rejected", "import", frozenset()),
                "# tries: a\n# expect: load-error\nx = 1\n": ("load-error", None, frozenset()),
                "# tries: a\n# expect: runs\n": ("episode", None,
                                                 frozenset({"max_steps", "success"})),
                "# tries: a\n# expect: episode-reason=timeout|memory\n":
                    ("episode", None, frozenset({"timeout", "memory"})),
            }
            for text, expected in cases.items():
                with self.subTest(text=text):
                    path.write_text(text)
                    case = parse_case(path)
                    self.assertEqual((case.kind, case.rule, case.reasons), expected)
            for text, message in {
                "x = 1\n": "validator/x.py: header needs '# tries:' and '# expect:' lines",
                "# tries: a\n# expect: rejected rule=nope\n":
                    "validator/x.py: expects 'rejected rule=<one of RULES>', got 'rejected rule=nope'",
                "# tries: a\n# expect: episode-reason=fine\n":
                    "validator/x.py: unknown reasons ['fine']",
            }.items():
                with self.subTest(text=text):
                    path.write_text(text)
                    with self.assertRaises(ValueError) as caught:
                        parse_case(path)
                    self.assertEqual(str(caught.exception), message)
        finally:
            shutil.rmtree(path.parent.parent, ignore_errors=True)

    def test_seeds_and_config_overrides(self):
        path = Path(tempfile.mkdtemp()) / "process" / "y.py"
        path.parent.mkdir()
        try:
            path.write_text("# tries: a\n# expect: runs\n# seeds: 1 2\n"
                            "# config: max_steps=5 act_budget_s=0.25\n")
            case = parse_case(path)
            self.assertEqual((case.seeds, case.config),
                             ((1, 2), {"max_steps": 5, "act_budget_s": 0.25}))
        finally:
            shutil.rmtree(path.parent.parent, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()

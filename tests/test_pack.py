"""Specification of shipping bgen: ``bgen.pyz``, the ``bgen`` command and the offline wheelhouse.

The archive and the wheelhouse are tested as they are used: built from a copy of the source
tree (a fresh checkout), then run by a Python in a fresh venv that has no bgen, numpy or
websockets, with an environment holding only PATH and HOME, from a folder outside the checkout.
The wheelhouse needs the package index for numpy's and websockets' wheels; without it those
tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import venv
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import bgen
from bgen import __main__ as bgen_main
from bgen import pack
from bgen.pack import bootstrap
from tests.test_server_support import ServerProcess, TIMEOUT, progress_messages, request, types
from tests.timing import scaled

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "bgen" / "llm" / "context" / "examples" / "move_to_target.py"
BUILD_TIMEOUT = scaled(120.0)
NOT_IN_A_CHECKOUT = shutil.ignore_patterns(".git", "build", "dist", "runs", "*.egg-info", "__pycache__")


def bare_environment(home: Path, **extra: str) -> dict:
    """What ``env -i PATH=... HOME=...`` leaves, plus ``extra``."""
    return {"PATH": os.defpath, "HOME": str(home), **extra}


def fresh_venv(folder: Path, with_pip: bool = False) -> Path:
    """A venv without packages (and without pip unless asked); its python."""
    venv.EnvBuilder(with_pip=with_pip, symlinks=os.name != "nt").create(folder)
    return folder / ("Scripts" if os.name == "nt" else "bin") / "python"


def run(command: list, *, env: dict, cwd: Path, timeout: float = TIMEOUT * 3) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], env=env, cwd=str(cwd), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def pip_version() -> str:
    done = subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.PIPE, text=True)
    return done.stdout.split()[1] if done.returncode == 0 else "0"


class CommandServer(ServerProcess):
    """A server started by any command line (``python bgen.pyz serve``, ``bin/bgen serve``)."""

    def __init__(self, command: list, *, env: dict, cwd: Path):
        import threading
        self.lines: list[str] = []
        self.listening = threading.Event()
        self.port = self.ws_port = None
        # Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
        self.proc = subprocess.Popen([str(c) for c in command], cwd=str(cwd), env=env, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()


class DeployedServerChecks:
    """The run flow shared by the pyz and the wheelhouse tests (mixed into a TestCase)."""

    def check_server_answers_health_and_completes_a_run(self, command: list, *, env: dict, cwd: Path):
        server = CommandServer([*command, "serve", "--port", "0", "--ws-port", "0", "--runs-dir", cwd / "runs"],
                               env=env, cwd=cwd)
        self.addCleanup(server.stop)
        server.wait_listening()
        status, health, _ = request(server.port, "GET", "/health")
        self.assertEqual((status, health["status"], health["version"]), (200, "ok", bgen.__version__))
        body = {"user_goal": "reach the target", "iterations": 1, "episodes": 2, "render": False,
                "policy_code": EXAMPLE_POLICY.read_text(encoding="utf-8")}
        status, started, _ = request(server.port, "POST", "/run", body)
        self.assertEqual(status, 200, started)
        messages = asyncio.run(progress_messages(server.ws_port, started["run_id"]))
        self.assertEqual(messages[-1]["type"], "done", server.output())
        self.assertEqual(types(messages).count("episode_summary"), 2, server.output())
        record = request(server.port, "GET", f"/runs/{started['run_id']}")[1]
        self.assertEqual(record["status"], "done")
        return server


# ---------------------------------------------------------------------------------------------
# The archive, built and run as a user would


class TestPyz(DeployedServerChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="bgen-test-pack-"))
        clone = cls.tmp / "checkout"
        shutil.copytree(ROOT, clone, ignore=NOT_IN_A_CHECKOUT)
        started = time.monotonic()
        # The README's pack command, in a fresh checkout, with bgen imported from that checkout.
        cls.build = subprocess.run([sys.executable, "-m", "bgen.pack"], cwd=str(clone), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT,
                                   env={**os.environ, "PYTHONPATH": ""})
        cls.build_seconds = time.monotonic() - started
        cls.pyz = clone / "dist" / "bgen.pyz"
        cls.python = fresh_venv(cls.tmp / "venv")
        cls.home = cls.tmp / "home"
        cls.home.mkdir()
        cls.elsewhere = cls.tmp / "elsewhere"            # the working folder: outside the checkout
        cls.elsewhere.mkdir()
        cls.starts = []                                   # (seconds, CompletedProcess): first, later
        for _ in range(2 if cls.build.returncode == 0 else 0):
            started = time.monotonic()
            done = run([cls.python, cls.pyz, "--version"], env=bare_environment(cls.home), cwd=cls.elsewhere)
            cls.starts.append((time.monotonic() - started, done))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.build.returncode, 0, self.build.stdout)

    def start_pyz(self, *args, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        return run([self.python, self.pyz, *args], env=env or bare_environment(self.home), cwd=self.elsewhere, **kw)

    def test_the_readme_pack_command_in_a_fresh_checkout_writes_dist_bgen_pyz(self):
        self.assertTrue(self.pyz.is_file())
        self.assertIn("dist/bgen.pyz: ", self.build.stdout)
        print(f"\n  bgen.pyz: {self.pyz.stat().st_size / 1e6:.1f} MB, built in {self.build_seconds:.1f} s",
              file=sys.stderr)

    def test_the_archive_holds_the_bootstrap_the_manifest_bgen_and_its_dependencies_without_bytecode(self):
        names = set(pack.pyz_listing(self.pyz))
        for name in ("__main__.py", "bgen_pyz.json", "payload/bgen/__init__.py", "payload/bgen/__main__.py",
                     "payload/bgen_server.py", "payload/bgen/llm/context/examples/move_to_target.py",
                     "payload/numpy/__init__.py", "payload/websockets/__init__.py"):
            with self.subTest(name=name):
                self.assertIn(name, names)
        self.assertTrue(any(n.startswith("payload/numpy/") and ".so" in n or n.endswith(".pyd") for n in names))
        self.assertEqual([n for n in names if "__pycache__" in n or "/tests/" in n], [])
        manifest = json.loads(zipfile.ZipFile(self.pyz).read("bgen_pyz.json"))
        self.assertEqual((manifest["version"], manifest["interpreter"]),
                         (bgen.__version__, bootstrap.interpreter_tag()))

    def test_the_venv_python_has_no_bgen_numpy_or_websockets_of_its_own(self):
        for module in ("bgen", "numpy", "websockets"):
            with self.subTest(module=module):
                done = run([self.python, "-c", f"import {module}"], env=bare_environment(self.home), cwd=self.elsewhere)
                self.assertIn(f"No module named '{module}'", done.stderr)

    def test_version_prints_the_version_on_the_first_and_on_later_starts(self):
        for seconds, done in self.starts:
            self.assertEqual((done.returncode, done.stdout, done.stderr), (0, f"bgen {bgen.__version__}\n", ""))
        print(f"\n  bgen.pyz --version: first start {self.starts[0][0]:.2f} s (unpacks), "
              f"later start {self.starts[1][0]:.2f} s", file=sys.stderr)

    def test_without_an_override_the_cache_is_a_package_folder_under_the_users_home(self):
        unpacked = list((self.home / ".cache" / "bgen" / "pyz").iterdir())
        self.assertEqual(len(unpacked), 1, unpacked)
        self.assertTrue((unpacked[0] / "bgen" / "__init__.py").is_file())   # bgen.__file__ is on disk
        self.assertTrue((unpacked[0] / bootstrap.COMPLETE).is_file())
        done = self.start_pyz("doctor")
        self.assertIn(f"bgen {bgen.__version__} from {unpacked[0] / 'bgen'}", done.stdout, done.stderr)

    def test_two_first_starts_at_once_leave_one_complete_cache_folder(self):
        cache = self.tmp / "cache-race"
        env = bare_environment(self.home, BGEN_PYZ_CACHE=str(cache))
        starts = [subprocess.Popen([str(self.python), str(self.pyz), "--version"], env=env, cwd=str(self.elsewhere),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [p.communicate(timeout=TIMEOUT * 3) for p in starts]
        self.assertEqual([(p.returncode, out) for p, (out, _) in zip(starts, outputs)],
                         [(0, f"bgen {bgen.__version__}\n")] * 2, outputs)
        entries = sorted(p.name for p in cache.iterdir())
        self.assertEqual(len(entries), 1, entries)
        self.assertRegex(entries[0], rf"^{bgen.__version__}-[0-9a-f]{{16}}$")
        self.assertTrue((cache / entries[0] / bootstrap.COMPLETE).is_file())

    def test_serve_answers_health_completes_a_run_and_exits_0_on_ctrl_c(self):
        env = bare_environment(self.home, BGEN_SIM_BACKEND="embedded")
        server = self.check_server_answers_health_and_completes_a_run([self.python, self.pyz], env=env,
                                                                      cwd=self.elsewhere)
        os.killpg(server.proc.pid, signal.SIGINT)           # Ctrl-C: the server and its forkserver
        self.assertEqual(server.proc.wait(TIMEOUT * 2), 0, server.output())
        server.reader.join(TIMEOUT)
        self.assertIn("SIGINT received: shutting down", server.output())
        self.assertNotIn("Traceback", server.output())

    def test_iterate_with_a_policy_file_completes(self):
        policy = self.elsewhere / "policy.py"
        shutil.copy(EXAMPLE_POLICY, policy)
        done = self.start_pyz("iterate", "--policy", "policy.py", "--iterations", "1", "--episodes", "1",
                        "--outdir", "iterate-run", "--backend", "embedded")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        record = json.loads((self.elsewhere / "iterate-run" / "run.json").read_text())
        self.assertEqual(record["status"], "done")

    def test_run_policy_bad_flags_are_one_line_and_exit_2(self):
        done = self.start_pyz("run-policy", "--policy", "missing.py")
        self.assertEqual((done.returncode, done.stderr.count("\n")), (2, 1), done.stderr)
        self.assertIn("cannot read policy file 'missing.py'", done.stderr)

    def test_a_python_of_another_version_gets_one_line_and_exit_2(self):
        other = dict(bootstrap.interpreter_tag(), python="3.99")
        archive = self.tmp / "other.pyz"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.write(bootstrap.__file__, "__main__.py")
            zf.writestr("bgen_pyz.json", json.dumps({"version": "0.0", "sha256": "0" * 64, "interpreter": other}))
        done = run([self.python, archive, "--version"], env=bare_environment(self.home), cwd=self.elsewhere)
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stderr.count("\n"), 1, done.stderr)
        self.assertIn(f"bgen.pyz: this bgen.pyz was built for cpython 3.99 on {other['platform']}, but this "
                      f"Python ({self.python}) is", done.stderr)

    def test_an_unwritable_cache_is_one_line_naming_the_variable(self):
        blocker = self.tmp / "a-file"
        blocker.write_text("")
        done = self.start_pyz("--version", env=bare_environment(self.home, BGEN_PYZ_CACHE=str(blocker / "cache")))
        self.assertEqual((done.returncode, done.stderr.count("\n")), (2, 1), done.stderr)
        self.assertIn(f"bgen.pyz: cannot write the unpack cache {blocker / 'cache'}", done.stderr)
        self.assertIn("set BGEN_PYZ_CACHE to a writable folder", done.stderr)


# ---------------------------------------------------------------------------------------------
# The wheelhouse, installed with --no-index into a fresh venv


class TestWheelhouse(DeployedServerChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="bgen-test-wheelhouse-"))
        # Whether the index answers is decided apart from the code under test, so that a broken
        # wheelhouse build fails here instead of passing for an unreachable index.
        probe = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--no-deps",
                                "--only-binary", ":all:", "--dest", str(cls.tmp / "probe"), "websockets>=12"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT)
        if probe.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            last = probe.stdout.strip().splitlines()[-1:] or ["no output"]
            raise unittest.SkipTest("the package index is unreachable, so the wheelhouse (numpy's and "
                                    f"websockets' wheels) cannot be built here: pip download said: {last[0]}")
        cls.wheelhouse = cls.tmp / "wheelhouse"
        cls.built = subprocess.run([sys.executable, "-m", "bgen.pack", "--wheelhouse", str(cls.wheelhouse)],
                                   cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=BUILD_TIMEOUT)
        # pip >= 22.3 installs into another environment (--python): the venv needs no pip of its own.
        cls.pip_outside = tuple(int(p) for p in pip_version().split(".")[:2]) >= (22, 3)
        cls.python = fresh_venv(cls.tmp / "venv", with_pip=not cls.pip_outside)
        cls.home = cls.tmp / "home"
        cls.home.mkdir()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.built.returncode, 0, self.built.stdout + self.built.stderr)

    def install(self) -> Path:
        """``pip install --no-index --find-links wheelhouse bgen`` into the venv; its bin folder."""
        bin_dir = self.python.parent
        if not (bin_dir / "bgen").exists():
            pip = ([sys.executable, "-m", "pip", "--python", self.python] if self.pip_outside
                   else [self.python, "-m", "pip"])
            done = run([*pip, "--disable-pip-version-check", "install", "--no-compile", "--no-index",
                        "--find-links", self.wheelhouse, "bgen"],
                       env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, cwd=self.tmp, timeout=BUILD_TIMEOUT)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        return bin_dir

    def test_the_wheelhouse_holds_bgen_numpy_and_websockets_wheels(self):
        names = sorted(p.name.split("-")[0] for p in self.wheelhouse.glob("*.whl"))
        self.assertEqual(names, ["bgen", "numpy", "websockets"])
        self.assertIn("install with: pip install --no-index --find-links", self.built.stdout)

    def test_installed_with_no_index_bgen_serve_answers_health_and_completes_a_run(self):
        bin_dir = self.install()
        cwd = self.tmp / "elsewhere"
        cwd.mkdir(exist_ok=True)
        env = bare_environment(self.home, BGEN_SIM_BACKEND="embedded")
        done = run([bin_dir / "bgen", "--version"], env=env, cwd=cwd)
        self.assertEqual(done.stdout, f"bgen {bgen.__version__}\n", done.stderr)
        self.check_server_answers_health_and_completes_a_run([bin_dir / "bgen"], env=env, cwd=cwd)


# ---------------------------------------------------------------------------------------------
# Pure parts


class TestBootstrap(unittest.TestCase):
    def test_the_cache_root_follows_the_override_then_xdg_then_home(self):
        table = [
            ({"BGEN_PYZ_CACHE": "/srv/bgen-cache", "HOME": "/home/u"}, "/srv/bgen-cache"),
            ({"XDG_CACHE_HOME": "/var/cache/u", "HOME": "/home/u"}, "/var/cache/u/bgen/pyz"),
            ({"HOME": "/home/u"}, "/home/u/.cache/bgen/pyz"),
        ]
        for environ, expected in table:
            with self.subTest(environ=environ):
                self.assertEqual(bootstrap.cache_root(environ), expected)

    def test_no_home_and_no_override_is_an_error_naming_the_variable(self):
        with self.assertRaises(bootstrap.PyzError) as caught:
            bootstrap.cache_root({})
        self.assertEqual(str(caught.exception),
                         "cannot choose a cache folder: set BGEN_PYZ_CACHE (or HOME) to a writable folder")

    def test_an_interpreter_matches_only_on_implementation_version_and_platform(self):
        here = bootstrap.interpreter_tag()
        self.assertIsNone(bootstrap.interpreter_mismatch(dict(here), here))
        for key, value in (("implementation", "pypy"), ("python", "3.10"), ("platform", "win-amd64")):
            with self.subTest(key=key):
                self.assertIn(f"is {bootstrap.describe(here)}", bootstrap.interpreter_mismatch({**here, key: value}, here))

    def test_the_cache_folder_is_named_by_version_and_content_hash(self):
        self.assertEqual(bootstrap.cache_name({"version": "1.2.0", "sha256": "ab" * 32}), "1.2.0-abababababababab")

    def test_a_member_leaving_the_payload_folder_is_refused(self):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("payload/../evil.py", "")
        with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(buffer) as zf:
            with self.assertRaises(bootstrap.PyzError) as caught:
                bootstrap._extract_payload(zf, folder)
        self.assertEqual(str(caught.exception), "corrupt archive: member 'payload/../evil.py' leaves the payload folder")


    def test_temporary_folders_of_killed_starts_are_removed_after_an_hour_and_only_those(self):
        with tempfile.TemporaryDirectory() as root:
            for name in (".0.1.0-abc.old", ".0.1.0-abc.fresh", "0.1.0-abc"):
                os.mkdir(os.path.join(root, name))
            hour_ago = time.time() - bootstrap.ABANDONED_S - 1
            os.utime(os.path.join(root, ".0.1.0-abc.old"), (hour_ago, hour_ago))
            os.utime(os.path.join(root, "0.1.0-abc"), (hour_ago, hour_ago))
            bootstrap.remove_abandoned(root, time.time())
            self.assertEqual(sorted(os.listdir(root)), [".0.1.0-abc.fresh", "0.1.0-abc"])


class TestPackPieces(unittest.TestCase):
    def test_requirement_names_are_read_before_versions_and_markers(self):
        for text, name in (("numpy>=1.22", "numpy"), ("websockets >= 12", "websockets"),
                           ("typing_extensions; python_version < '3.11'", "typing_extensions")):
            with self.subTest(text=text):
                self.assertEqual(pack.requirement_name(text), name)

    def test_the_runtime_requirements_are_setup_cfgs(self):
        self.assertEqual(pack.runtime_requirements(), ["numpy>=1.22", "websockets>=12"])

    def test_a_dependency_that_is_not_installed_is_named(self):
        with self.assertRaises(pack.PackError) as caught:
            pack.dependency_closure(["no-such-distribution-bgen"])
        self.assertIn("no-such-distribution-bgen is not installed in this Python", str(caught.exception))

    def test_the_payload_has_no_scripts_bytecode_or_tests(self):
        names = list(pack.payload_files())
        self.assertIn("bgen_server.py", names)
        self.assertEqual([n for n in names if n.startswith("..") or n.endswith(".pyc") or "/tests/" in n], [])

    def test_wheelhouse_flags_without_wheelhouse_are_refused(self):
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit) as caught:
            pack.main(["--platform", "manylinux2014_x86_64"])
        self.assertEqual(caught.exception.code, 2)
        self.assertIn("--platform only apply with --wheelhouse DIR", err.getvalue())


class TestBgenCommand(unittest.TestCase):
    def call(self, *argv) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = bgen_main.main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_version_and_help(self):
        self.assertEqual(self.call("--version"), (0, f"bgen {bgen.__version__}\n", ""))
        code, out, _ = self.call("--help")
        self.assertEqual(code, 0)
        for command in bgen_main.COMMANDS:
            with self.subTest(command=command):
                self.assertIn(f"  {command} ", out)

    def test_an_unknown_or_missing_command_is_exit_2(self):
        self.assertEqual(self.call("launch"), (2, "", "bgen: unknown command 'launch'; expects one of serve, "
                                                       "iterate, run-policy, bench, doctor or --version\n"))
        self.assertEqual(self.call()[0], 2)

    def test_commands_dispatch_to_the_modules_main_with_the_rest_of_the_line(self):
        for command, target in (("serve", "bgen_server.main"), ("iterate", "bgen.orchestrator.iterate.main"),
                                ("run-policy", "bgen.runner.run_policy.main")):
            with self.subTest(command=command), mock.patch(target, return_value=7) as called:
                self.assertEqual(self.call(command, "--port", "0")[0], 7)
                called.assert_called_once_with(["--port", "0"])

    def test_bench_and_doctor_without_their_modules_say_so_in_one_line(self):
        with mock.patch.object(bgen_main, "optional_entry", return_value=None):
            self.assertEqual(self.call("bench", "sim"), (2, "", "bgen bench: the benchmarks are not part of this "
                                                                "installation (no module bgen.bench with a main)\n"))
            code, _, err = self.call("doctor")
        self.assertEqual((code, err), (2, "bgen doctor: the sandbox isolation report is not part of this "
                                          "installation (no bgen.runner.isolation.isolation_report)\n"))

    def test_bench_passes_the_name_and_flags_and_doctor_prints_the_report(self):
        entry = mock.Mock(return_value=0)
        with mock.patch.object(bgen_main, "optional_entry", return_value=entry):
            self.assertEqual(self.call("bench", "sim", "--quick")[0], 0)
            entry.assert_called_once_with(["sim", "--quick"])
        with mock.patch.object(bgen_main, "optional_entry", return_value=lambda: {"rlimits": True}):
            code, out, _ = self.call("doctor")
        self.assertEqual(code, 0)
        self.assertIn('"rlimits": true', out)

    def test_a_module_that_is_absent_is_none_but_a_broken_import_inside_it_propagates(self):
        self.assertIsNone(bgen_main.optional_entry("bgen.no_such_module", "main"))
        with mock.patch("importlib.import_module", side_effect=ModuleNotFoundError("x", name="numpy")):
            with self.assertRaises(ModuleNotFoundError):
                bgen_main.optional_entry("bgen.bench", "main")

    def test_ctrl_c_reaching_the_dispatcher_is_exit_130(self):
        with mock.patch("bgen.orchestrator.iterate.main", side_effect=KeyboardInterrupt):
            self.assertEqual(self.call("iterate"), (130, "", "bgen iterate: interrupted\n"))


if __name__ == "__main__":
    unittest.main()

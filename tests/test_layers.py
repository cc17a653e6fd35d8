"""Every module imports only from its own layer or the layers below it.

    bgen.errors, bgen (package)  <  bgen.sim  <  bgen.runner  <  bgen.orchestrator, bgen.llm
        <  bgen.server  <  bgen_server.py  <  bgen.bench  <  bgen.__main__ (the bgen command), bgen.pack

Imports are read with ``ast`` (top-level and inside functions alike), so a lazy import that
reaches upwards fails here just as a module-level one does.
"""

import ast
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Longest prefix first; the value is the layer's height.
LAYERS = (
    ("bgen.errors", 0),
    ("bgen.sim", 1),
    ("bgen.runner", 2),
    ("bgen.orchestrator", 3),
    ("bgen.llm", 3),
    ("bgen.server", 4),
    ("bgen_server", 5),
    ("bgen.bench", 6),
    ("bgen.__main__", 7),
    ("bgen.pack", 7),
    ("bgen", 0),
)


def layer_of(module: str) -> int | None:
    """The layer of a bgen module name, None for anything outside bgen."""
    for prefix, height in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return height
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            # ``from bgen import runner`` imports the runner package itself.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if layer_of(f"{base}.{alias.name}") is not None and base == "bgen"]
    return found


def sources() -> list[Path]:
    return sorted(ROOT.joinpath("bgen").rglob("*.py")) + [ROOT / "bgen_server.py"]


class LayerTests(unittest.TestCase):
    def test_every_module_imports_only_downwards(self):
        for path in sources():
            module = module_name(path)
            own = layer_of(module)
            for line, target in imported_modules(path, module):
                height = layer_of(target)
                if height is None:
                    continue
                with self.subTest(module=module, imports=target):
                    self.assertLessEqual(height, own, f"{path.relative_to(ROOT)}:{line} imports "
                                                      f"{target} from a higher layer")

    def test_the_checker_sees_upward_imports_of_every_form(self):
        text = ("import bgen_server\n"
                "from bgen.runner.episode import build_sim\n"
                "def lazy():\n"
                "    from ..server import store\n"
                "    from bgen import orchestrator\n")
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "probe.py"
            probe.write_text(text, encoding="utf-8")
            found = imported_modules(probe, "bgen.sim.probe")
        self.assertEqual([(line, target, layer_of(target)) for line, target in found],
                         [(1, "bgen_server", 5), (2, "bgen.runner.episode", 2),
                          (4, "bgen.server", 4), (5, "bgen", 0), (5, "bgen.orchestrator", 3)])

    def test_test_doubles_live_under_tests(self):
        self.assertFalse((ROOT / "bgen" / "server" / "fakeloop.py").exists())
        self.assertTrue((ROOT / "tests" / "fakeloop.py").exists())


if __name__ == "__main__":
    unittest.main()

"""The context pack given to the LLM: API cheatsheet, policy template and example policies.

Every call shown here is executed by the test suite against the embedded backend (the
cheatsheet's python blocks line by line, the examples as real episodes), so the model is never
taught a call that fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CONTEXT_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = CONTEXT_DIR / "examples"
EXAMPLE_NAMES = ("move_to_target", "reactive_avoidance", "circular_patrol", "wind_turbine_inspection")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def cheatsheet() -> str:
    return _read(CONTEXT_DIR / "API_CHEATSHEET.md")


def policy_template() -> str:
    return _read(CONTEXT_DIR / "POLICY_TEMPLATE.py")


def example(name: str) -> str:
    if name not in EXAMPLE_NAMES:
        raise KeyError(f"example: expects one of {', '.join(EXAMPLE_NAMES)}, actual: {name!r}")
    return _read(EXAMPLES_DIR / f"{name}.py")


def example_path(name: str) -> Path:
    example(name)
    return EXAMPLES_DIR / f"{name}.py"


_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def cheatsheet_code_blocks(text: str | None = None) -> list[tuple[int, str]]:
    """(first line number, code) of every fenced python block in the cheatsheet."""
    text = cheatsheet() if text is None else text
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _FENCE.finditer(text)]


@dataclass(frozen=True)
class ContextPack:
    cheatsheet: str
    template: str
    examples: dict = field(default_factory=dict)   # name -> source


def choose_examples(goal: str, scenario: str) -> tuple[str, ...]:
    """The examples worth their tokens for this goal: always the basics, the rest when relevant."""
    names = ["move_to_target", "reactive_avoidance"]
    lowered = goal.lower()
    if any(word in lowered for word in ("patrol", "circle", "circular", "orbit", "loop", "waypoint")):
        names.append("circular_patrol")
    if scenario == "wind_farm" or any(word in lowered for word in ("turbine", "inspect", "wind")):
        names.append("wind_turbine_inspection")
    return tuple(names)


def load_pack(example_names=None) -> ContextPack:
    names = EXAMPLE_NAMES if example_names is None else tuple(example_names)
    return ContextPack(cheatsheet=cheatsheet(), template=policy_template(),
                       examples={name: example(name) for name in names})

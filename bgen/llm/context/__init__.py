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


#: Every number the cheatsheet and the system prompt state, in one place; the text names them
#: as ``{{name}}``. Each is checked against the embedded backend by tests/test_context_pack.py
#: (a measured flight within 20 %, the runner's defaults, a limit that raises as stated).
CRUISE_MPS_PER_URGENCY = 2.7     # straight flight, 20-40 cells (measured: 2.4 m/s at 0.9)
PLAN_START_STEPS = 50            # steps an intent spends getting going and settling
FACTS: dict[str, int | float] = {
    "delta_s": 0.01,                        # EpisodeConfig.delta
    "act_budget_s": 2.0,                    # EpisodeConfig.act_budget_s (per policy call)
    "max_steps": 5000,                      # EpisodeConfig.max_steps
    "max_steps_s": 50,
    "cruise_mps_per_urgency": CRUISE_MPS_PER_URGENCY,
    "cruise_mps_at_09": round(CRUISE_MPS_PER_URGENCY * 0.9, 1),
    "plan_start_steps": PLAN_START_STEPS,
    "steps_per_cell": round(1 / (CRUISE_MPS_PER_URGENCY * 0.01)),   # at urgency 1
    "steps_20_cells_at_09": int(round(PLAN_START_STEPS + round(1 / (CRUISE_MPS_PER_URGENCY * 0.01))
                                      * 20 / 0.9, -1)),
    "action_end_within_m": 0.9,             # measured: at most 0.70 m (30 plans), 0.82 m (200)
    "collision_extent_limit": 1.0,          # voxelsim/src/env.rs, collisions: assert dims < 1
    "planner_expansions": 200_000,          # voxelsim/src/planner/astar.rs, max_expansions
    "chase_advance_m": 1.0,                 # voxelsim/src/agent/chase.rs, distance_threshold
}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def fact_text(name: str) -> str:
    """A fact as the text shows it: 200,000 / 2.7 / 1.0."""
    value = FACTS[name]
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.1f}" if float(value).is_integer() else f"{value:g}"


def with_facts(text: str) -> str:
    """``text`` with every ``{{name}}`` replaced by ``fact_text(name)`` (KeyError if unknown)."""
    return _PLACEHOLDER.sub(lambda m: fact_text(m.group(1)), text)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def cheatsheet_source() -> str:
    """The cheatsheet file as written, placeholders included."""
    return _read(CONTEXT_DIR / "API_CHEATSHEET.md")


def cheatsheet() -> str:
    """The cheatsheet as the LLM reads it: every ``{{fact}}`` filled in from ``FACTS``."""
    return with_facts(cheatsheet_source())


def policy_template() -> str:
    return _read(CONTEXT_DIR / "POLICY_TEMPLATE.py")


def example(name: str) -> str:
    if name not in EXAMPLE_NAMES:
        raise KeyError(f"example: expects one of {', '.join(EXAMPLE_NAMES)}, actual: {name!r}")
    return _read(EXAMPLES_DIR / f"{name}.py")


def example_path(name: str) -> Path:
    example(name)
    return EXAMPLES_DIR / f"{name}.py"


_FENCE = re.compile(r"^```python(?:[ \t]+idiom=([\w-]+))?[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def cheatsheet_code_blocks(text: str | None = None) -> list[tuple[int, str]]:
    """(first line number, code) of every fenced python block in the cheatsheet."""
    text = cheatsheet() if text is None else text
    return [(text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in _FENCE.finditer(text)]


def cheatsheet_idioms(text: str | None = None) -> dict[str, str]:
    """{id: code} of the blocks fenced as ```` ```python idiom=<id> ````: the idioms whose claims
    tests/test_context_pack.py checks one by one."""
    text = cheatsheet() if text is None else text
    return {m.group(1): m.group(2) for m in _FENCE.finditer(text) if m.group(1)}


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

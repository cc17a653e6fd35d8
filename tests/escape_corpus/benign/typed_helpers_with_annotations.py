# tries: type-annotated helpers, Optional/List from typing and a typed dataclass
# expect: runs
from dataclasses import dataclass
from typing import List, Optional, Tuple

import voxelsim


@dataclass
class Leg:
    direction: str
    count: int


def _legs_to_moves(legs: List[Leg]) -> list:
    table = {"fwd": voxelsim.MoveDir.Forward, "right": voxelsim.MoveDir.Right}
    moves: list = []
    for leg in legs:
        moves.extend([table[leg.direction]] * leg.count)
    return moves


PLAN: Optional[list] = None
LAST: Tuple[float, float, float] = (0.0, 0.0, 0.0)


def act(t: float, agent, world, fw, env, helpers) -> Optional[object]:
    global PLAN
    if PLAN is None:
        PLAN = _legs_to_moves([Leg("fwd", 2), Leg("right", 1)])
        return voxelsim.ActionIntent(1.0, 0.0, PLAN)
    return None


def collect(step_ctx: dict) -> dict:
    return {}


def finalize(ep_ctx: dict) -> dict:
    return {"summary": f"{len(PLAN or [])} moves"}

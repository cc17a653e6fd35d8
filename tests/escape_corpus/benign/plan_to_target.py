# tries: plan to the configured target with A* when idle (the template's shape)
# expect: runs

from typing import Any, Dict, Optional

import voxelsim as vxs

state: Dict[str, Any] = {"target": None, "failures": 0}


def init(config: Dict[str, Any]) -> None:
    state["target"] = [int(round(v)) for v in config["target"]]


def act(t: float, agent: vxs.Agent, world: vxs.VoxelGrid, fw, env, helpers) -> Optional[object]:
    if agent.get_action_py() is not None:
        return None
    try:
        return helpers.plan_to(world, agent.get_coord_py(), state["target"], 0.9, 0.0, padding=1), "Replace"
    except Exception as error:
        state["failures"] += 1
        return helpers.intent(0.6, 0.0, [vxs.MoveDir.Up]), "Replace"


def collect(step_ctx: Dict[str, Any]) -> Dict[str, str]:
    return {"pos": f"{step_ctx.get('agent_pos')}", "failures": str(state["failures"])}


def finalize(ep_ctx: Dict[str, Any]) -> Dict[str, str]:
    return {"summary": f"success={ep_ctx.get('success')} steps={ep_ctx.get('steps')}"}

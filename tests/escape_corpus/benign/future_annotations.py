# tries: from __future__ import annotations with rich annotations
# expect: runs

from __future__ import annotations

import voxelsim as vxs

Coord = list


def act(t: float, agent: vxs.Agent, world: vxs.VoxelGrid, fw: vxs.FilterWorld,
        env: vxs.EnvState, helpers: "Helpers") -> vxs.ActionIntent | None:
    return None


def collect(step_ctx: dict[str, object]) -> dict[str, str]:
    return {}


def finalize(ep_ctx: dict[str, object]) -> dict[str, str]:
    return {"summary": "annotated"}

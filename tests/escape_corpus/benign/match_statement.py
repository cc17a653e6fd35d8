# tries: structural pattern matching on step context and moves
# expect: runs

import voxelsim as vxs


def describe(value):
    match value:
        case None:
            return "none"
        case [x, y, z]:
            return f"{x:.0f},{y:.0f},{z:.0f}"
        case {"kind": kind, **rest}:
            return kind + str(len(rest))
        case int() | float() as number if number > 0:
            return "positive"
        case vxs.MoveDir.Up:
            return "up"
        case _:
            return "other"


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"pos": describe(step_ctx.get("agent_pos")), "up": describe(vxs.MoveDir.Up),
            "d": describe({"kind": "k", "a": 1})}


def finalize(ep_ctx):
    return {"summary": describe(ep_ctx.get("steps"))}

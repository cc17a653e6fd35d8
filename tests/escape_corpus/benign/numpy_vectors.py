# tries: vector maths with the numpy subset
# expect: runs

import numpy as np


def act(t, agent, world, fw, env, helpers):
    pos = np.array(agent.get_pos(), dtype=float)
    heading = np.arctan2(pos[1], pos[0])
    span = float(np.linalg.norm(pos - np.zeros(3)))
    clipped = np.clip(pos, -100.0, 100.0)
    return None


def collect(step_ctx):
    pos = np.asarray(step_ctx.get("agent_pos") or [0, 0, 0], dtype=float)
    return {"norm": f"{float(np.linalg.norm(pos)):.1f}", "mean": str(round(float(np.mean(pos)), 2))}


def finalize(ep_ctx):
    return {"summary": "numpy ok"}

# tries: isinstance with numpy types to normalise positions
# expect: runs
import numpy as np


def _as_vector(value):
    if isinstance(value, np.ndarray):
        return value.astype(float)
    if isinstance(value, (list, tuple)):
        return np.array(value, dtype=float)
    if isinstance(value, np.floating):
        return np.array([float(value)] * 3)
    raise TypeError("unexpected position")


TRACK = []


def act(t, agent, world, fw, env, helpers):
    TRACK.append(_as_vector(agent.get_pos()))
    return None


def collect(step_ctx):
    return {"norm": f"{float(np.linalg.norm(TRACK[-1])):.2f}"}


def finalize(ep_ctx):
    spread = np.max(TRACK, axis=0) - np.min(TRACK, axis=0)
    return {"summary": "spread " + ", ".join("{:.2f}".format(v) for v in spread)}

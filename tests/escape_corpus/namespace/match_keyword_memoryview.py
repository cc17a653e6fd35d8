# tries: read ndarray.data through a match class-pattern keyword instead of attribute syntax
# expect: rejected rule=denied-attribute

import numpy as np

items = np.array([None, "x"], dtype=object)
match items:
    case object(data=raw):
        raw.cast("B")[0:8] = bytes([65] * 8)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

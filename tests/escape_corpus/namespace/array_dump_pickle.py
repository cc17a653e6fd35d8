# tries: pickle an array to a file with dump
# expect: rejected rule=denied-attribute

import numpy as np

np.zeros(3).dump("@CANARY@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

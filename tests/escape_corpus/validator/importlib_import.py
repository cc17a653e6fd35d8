# tries: import importlib to load os
# expect: rejected rule=import

import importlib

os_module = importlib.import_module("os")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

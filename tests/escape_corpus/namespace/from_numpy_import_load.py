# tries: import numpy's file loader by name
# expect: load-error rule=import

from numpy import load

data = load("@SECRET_FILE@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

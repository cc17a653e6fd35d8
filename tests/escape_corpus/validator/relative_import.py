# tries: a relative import of a sibling module
# expect: rejected rule=import

from . import worker


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

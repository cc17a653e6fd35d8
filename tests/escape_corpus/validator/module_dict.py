# tries: read a stand-in module's __dict__
# expect: rejected rule=underscore-name

import math
everything = math.__dict__


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

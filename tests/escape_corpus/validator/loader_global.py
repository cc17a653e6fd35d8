# tries: use the module's __loader__ to load os
# expect: rejected rule=underscore-name

os_module = __loader__.load_module("os")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

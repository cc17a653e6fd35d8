# tries: reach object through int.mro() and list its subclasses
# expect: rejected rule=denied-attribute

root = int.mro()[-1]


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

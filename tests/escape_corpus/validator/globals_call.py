# tries: read builtins through globals()
# expect: rejected rule=forbidden-name

table = globals()["__builtins__"]


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

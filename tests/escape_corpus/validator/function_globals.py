# tries: read builtins through a policy function's __globals__
# expect: rejected rule=underscore-name

def probe():
    return 1

opener = probe.__globals__["__builtins__"]["open"]


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

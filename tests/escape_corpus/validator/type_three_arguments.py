# tries: create a class with type() to define dunder methods
# expect: rejected rule=forbidden-name

Evil = type("Evil", (), {"__reduce__": lambda self: (print, ("x",))})


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

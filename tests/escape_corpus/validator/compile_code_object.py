# tries: compile a code object at run time
# expect: rejected rule=forbidden-name

code = compile("1", "x", "eval")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

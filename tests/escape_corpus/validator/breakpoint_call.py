# tries: drop into the debugger with breakpoint()
# expect: rejected rule=forbidden-name

breakpoint()


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

# tries: evaluate an import hidden in a string
# expect: rejected rule=forbidden-name

eval("__import__('os').system('touch @CANARY@')")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

# tries: end the worker with exit()
# expect: rejected rule=forbidden-name

exit(0)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

# tries: spin forever while the module body loads
# expect: episode-reason=timeout
# config: max_steps=5

while True:
    pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

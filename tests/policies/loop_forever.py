def act(t, agent, world, fw, env, helpers):
    while True:
        pass


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

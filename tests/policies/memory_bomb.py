def act(t, agent, world, fw, env, helpers):
    hoard = bytearray(1024 * 1024 * 1024)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx:
    return {}

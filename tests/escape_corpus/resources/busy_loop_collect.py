# tries: spin forever in collect()
# expect: episode-reason=timeout
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    while True:
        pass


def finalize(ep_ctx):
    return {}

# tries: spin forever in act()
# expect: episode-reason=timeout
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    while True:
        pass


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

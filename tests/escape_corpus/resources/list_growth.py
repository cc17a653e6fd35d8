# tries: grow a list until memory runs out
# expect: episode-reason=memory|timeout
# config: max_steps=5

hoard = []


def act(t, agent, world, fw, env, helpers):
    while True:
        hoard.append([0] * 100000)


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

# tries: nest finally blocks so each time limit only unwinds one level
# expect: episode-reason=timeout
# config: max_steps=5

def layer(n):
    try:
        if n:
            layer(n - 1)
        while True:
            pass
    finally:
        if n:
            layer(n - 1)


def act(t, agent, world, fw, env, helpers):
    layer(50)


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

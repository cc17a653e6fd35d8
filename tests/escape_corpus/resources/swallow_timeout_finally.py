# tries: keep running in a finally block after the time limit fires
# expect: episode-reason=timeout
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    try:
        while True:
            pass
    finally:
        while True:
            pass


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

# tries: catch everything catchable in a loop around a busy loop
# expect: episode-reason=timeout
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    while True:
        try:
            while True:
                pass
        except Exception:
            pass


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

# tries: replace every collect() time limit with a ValueError raised in finally (collect errors are only logged)
# expect: episode-reason=timeout
# config: max_steps=200


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    try:
        while True:
            pass
    finally:
        raise ValueError("not a timeout")


def finalize(ep_ctx):
    return {"summary": "done"}

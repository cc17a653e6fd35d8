# tries: swallow every act() time limit with return inside finally (200 x the budget)
# expect: episode-reason=timeout
# config: max_steps=200


def act(t, agent, world, fw, env, helpers):
    try:
        while True:
            pass
    finally:
        return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

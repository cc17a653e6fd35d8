"""Divides by zero on line 8, at the third step."""


def act(t, agent, world, fw, env, helpers):
    steps_left = 2 - int(round(t / 0.01))
    if steps_left >= 0:
        return None
    return 1 / 0


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "finalize still runs after a policy error"}

"""Outlasts the budget alarm: the finally block keeps looping after the alarm fires."""


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

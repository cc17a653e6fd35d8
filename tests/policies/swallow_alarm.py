"""Catches everything, including the budget alarm, and keeps looping."""


def act(t, agent, world, fw, env, helpers):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

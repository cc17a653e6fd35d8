"""Asks for about 1.6 GB in one go: fine on the machine, over the worker's address-space limit."""


def act(t, agent, world, fw, env, helpers):
    hoard = [0] * (200 * 1024 * 1024)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}

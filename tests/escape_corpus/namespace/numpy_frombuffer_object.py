# tries: import frombuffer to view raw memory as objects
# expect: load-error rule=import

from numpy import frombuffer

forged = frombuffer(bytes(8), dtype=object)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

# tries: signal the parent's process group through the signal module
# expect: rejected rule=import

import signal

signal.pthread_kill(0, 9)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

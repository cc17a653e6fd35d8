# tries: kill the parent with os.kill(os.getppid(), 9)
# expect: rejected rule=import

import os

os.kill(os.getppid(), 9)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

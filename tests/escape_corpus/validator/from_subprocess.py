# tries: import Popen from subprocess
# expect: rejected rule=import

from subprocess import Popen

Popen(["touch", "@CANARY@"])


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

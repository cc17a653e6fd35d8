# tries: from collections import abc: a real submodule in sys.modules
# expect: load-error rule=import

from collections import abc

leaked = abc.sys


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

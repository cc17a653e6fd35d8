# tries: copy a stand-in function's module globals into the policy's with functools.wraps(updated=)
# expect: load-error rule=load-exception

import functools
import random


def sink():
    return 0


functools.wraps(random.shuffle, assigned=(), updated=("__globals__",))(sink)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

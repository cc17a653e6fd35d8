# tries: import os spelled in fullwidth letters (NFKC folds it to 'os')
# expect: rejected rule=import

import ｏｓ


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

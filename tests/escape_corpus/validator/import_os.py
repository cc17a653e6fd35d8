# tries: plain import os
# expect: rejected rule=import

import os

os.system("touch @CANARY@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

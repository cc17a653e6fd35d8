# tries: from typing import sys (a re-export of the real module)
# expect: load-error rule=import

from typing import sys

sys.modules["os"].system("touch @CANARY@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

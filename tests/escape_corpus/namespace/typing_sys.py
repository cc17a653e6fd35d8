# tries: reach sys.modules through typing.sys
# expect: load-error rule=load-exception

import typing

typing.sys.modules["os"].system("touch @CANARY@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

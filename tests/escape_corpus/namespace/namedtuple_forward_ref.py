# tries: typing.NamedTuple with a string annotation evaluated later
# expect: load-error rule=load-exception

import typing

Evil = typing.NamedTuple("Evil", [("a", "__import__('os').system('touch @CANARY@')")])


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

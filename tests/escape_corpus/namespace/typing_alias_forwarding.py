# tries: use typing aliases' forwarding to the real container types
# expect: runs

import typing

made = typing.Dict.fromkeys(["a"], 1)
copied = typing.List.copy([1, 2])


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

# tries: have typing.get_type_hints evaluate a string annotation
# expect: load-error rule=load-exception

import typing


def probe(x: "__import__('os').system('touch @CANARY@')"):
    return x


hints = typing.get_type_hints(probe)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

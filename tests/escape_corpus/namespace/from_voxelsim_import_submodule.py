# tries: import a backend submodule that imports numpy and operator
# expect: load-error rule=import

from voxelsim import convert

operator_module = convert.operator


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

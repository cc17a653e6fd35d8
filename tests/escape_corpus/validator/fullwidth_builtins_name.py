# tries: spell __builtins__ with fullwidth low lines
# expect: rejected rule=underscore-name

table = _＿builtins＿＿


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

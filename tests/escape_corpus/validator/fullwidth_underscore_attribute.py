# tries: spell __class__ with fullwidth low lines after one ASCII underscore
# expect: rejected rule=underscore-name

cls = ()._＿class＿＿


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

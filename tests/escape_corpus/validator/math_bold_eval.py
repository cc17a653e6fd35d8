# tries: spell eval in mathematical bold letters (NFKC folds it to 'eval')
# expect: rejected rule=forbidden-name

value = 𝐞𝐯𝐚𝐥("1 + 1")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

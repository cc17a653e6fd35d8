# tries: return huge notes from collect() and finalize()
# expect: runs
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {str(i): "y" * 100000 for i in range(60)}


def finalize(ep_ctx):
    return {"summary": "z" * 1000000}

# tries: move the agent by set_pos() to fake reaching the target
# expect: episode-reason=teleport
# config: max_steps=5

def init(config):
    global goal
    goal = config["target"]


def act(t, agent, world, fw, env, helpers):
    agent.set_pos([float(v) for v in goal])
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

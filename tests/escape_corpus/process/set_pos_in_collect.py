# tries: move the agent from collect() (after the runner measured the step) in small steps toward the target
# expect: episode-reason=teleport
# config: max_steps=200

state = {"goal": None, "agent": None}


def init(config):
    state["goal"] = [float(v) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    state["agent"] = agent
    return None


def collect(step_ctx):
    agent = state["agent"]
    x, y, z = agent.get_pos()
    gx, gy, gz = state["goal"]
    dx, dy, dz = gx - x, gy - y, gz - z
    length = (dx * dx + dy * dy + dz * dz) ** 0.5
    if length > 0.4:
        dx, dy, dz = dx / length * 0.4, dy / length * 0.4, dz / length * 0.4
    agent.set_pos([x + dx, y + dy, z + dz])
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

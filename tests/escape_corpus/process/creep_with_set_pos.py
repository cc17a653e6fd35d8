# tries: reach the target by moving the agent with set_pos in steps below the teleport speed bound (40 m/s at delta 0.01)
# expect: episode-reason=teleport
# config: max_steps=200

state = {"goal": None}


def init(config):
    state["goal"] = [float(v) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    x, y, z = agent.get_pos()
    gx, gy, gz = state["goal"]
    dx, dy, dz = gx - x, gy - y, gz - z
    length = (dx * dx + dy * dy + dz * dz) ** 0.5
    if length > 0.4:
        dx, dy, dz = dx / length * 0.4, dy / length * 0.4, dz / length * 0.4
    agent.set_pos([x + dx, y + dy, z + dz])
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

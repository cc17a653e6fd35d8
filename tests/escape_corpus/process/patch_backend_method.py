# tries: replace Agent.get_pos on the shared backend class so the runner measures a fake position creeping to the target
# expect: episode-reason=policy_error
# config: max_steps=120

import voxelsim as vxs

fake = {"pos": None, "goal": None}


def creep(agent):
    x, y, z = fake["pos"]
    gx, gy, gz = fake["goal"]
    dx, dy, dz = gx - x, gy - y, gz - z
    length = (dx * dx + dy * dy + dz * dz) ** 0.5
    if length > 0.3:
        dx, dy, dz = dx / length * 0.3, dy / length * 0.3, dz / length * 0.3
    fake["pos"] = [x + dx, y + dy, z + dz]
    return list(fake["pos"])


def init(config):
    fake["goal"] = [float(v) for v in config["target"]]
    fake["pos"] = [float(v) for v in config["start"]]
    vxs.Agent.get_pos = creep


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

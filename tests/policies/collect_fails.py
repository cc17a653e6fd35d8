"""Flies to the target; collect() fails on every step, which must not end the episode."""

TARGET = [60, 60, -20]


def init(config):
    global TARGET
    TARGET = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.plan_to(world, agent.get_coord_py(), TARGET, 1.0, 0.0)
    return None


def collect(step_ctx):
    return {"ratio": str(1 / 0)}


def finalize(ep_ctx):
    raise ValueError("finalize fails too")

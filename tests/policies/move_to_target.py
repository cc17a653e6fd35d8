"""Plans once with A* to the target given in init(config), then lets the agent fly it."""
import voxelsim as vxs

TARGET = [60, 60, -20]


def init(config):
    global TARGET
    TARGET = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        intent = helpers.plan_to(world, agent.get_coord_py(), TARGET, 1.0, 0.0)
        return intent, "Replace"
    return None


def collect(step_ctx):
    return {"dist": f"{step_ctx['distance_to_target']:.2f}"}


def finalize(ep_ctx):
    return {"summary": f"steps={ep_ctx['steps']} success={ep_ctx['success']}"}

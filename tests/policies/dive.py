"""Flies straight down from the start, into whatever lies below: low clearance, altitude out of
any high band, and collisions once it meets the ground."""
import voxelsim as vxs


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.intent(1.0, 0.0, [vxs.MoveDir.Down] * 8), "Replace"
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "dived"}

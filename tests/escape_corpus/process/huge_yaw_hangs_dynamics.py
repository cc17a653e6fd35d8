# tries: hang the simulator's dynamics with a huge yaw (blamed on the simulator, not the policy)
# expect: episode-reason=policy_error
# config: max_steps=20

import voxelsim


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return voxelsim.ActionIntent(1.0, 1e300, [voxelsim.MoveDir.Forward])
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

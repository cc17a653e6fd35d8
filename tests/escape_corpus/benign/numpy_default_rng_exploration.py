# tries: seeded numpy.random.default_rng for a random walk
# expect: runs
import numpy as np
import voxelsim

RNG = {"rng": None}
STEPS = [voxelsim.MoveDir.Forward, voxelsim.MoveDir.Right, voxelsim.MoveDir.Left]


def init(config):
    RNG["rng"] = np.random.default_rng(config["seed"])


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        picks = RNG["rng"].integers(0, len(STEPS), size=3)
        return voxelsim.ActionIntent(0.8, 0.0, [STEPS[int(i)] for i in picks])
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": f"random walk, {ep_ctx['steps']} steps"}

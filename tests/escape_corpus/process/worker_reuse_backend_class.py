# tries: mark a backend class in one episode and look for the mark in the next (fresh workers would hide it; immutable backend types refuse the mark outright)
# expect: episode-reason=policy_error
# seeds: 1 2
# config: max_steps=3

import voxelsim as vxs


def init(config):
    if hasattr(vxs.MoveDir, "corpus_mark"):
        raise RuntimeError("state from a previous episode is visible")
    vxs.MoveDir.corpus_mark = config["seed"]


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

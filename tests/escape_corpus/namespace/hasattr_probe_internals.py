# tries: probe private and I/O attributes with hasattr
# expect: runs

import numpy as np
import voxelsim as vxs



def init(config):
    answers = [hasattr(vxs.MoveDir.to_string, "__globals__"), hasattr(np.zeros(1), "tofile"),
               hasattr(act, "__code__"), hasattr(init, "__globals__")]
    if any(answers):
        raise RuntimeError("hasattr reported an internal attribute")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}

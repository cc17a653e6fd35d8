# tries: send functions, classes and backend objects back through notes
# expect: runs

import voxelsim as vxs


class Marker:
    pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"fn": act, "cls": Marker, "inst": Marker(), "move": vxs.MoveDir.Up}


def finalize(ep_ctx):
    return {"summary": act}

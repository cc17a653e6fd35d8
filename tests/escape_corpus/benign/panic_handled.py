# tries: catch a backend panic via voxelsim.PanicException and recover
# expect: runs

import voxelsim as vxs

notes = {"panics": 0}


def act(t, agent, world, fw, env, helpers):
    try:
        vxs.ActionIntent(0.0, 0.0, [vxs.MoveDir.Up])
    except vxs.PanicException:
        notes["panics"] += 1
    return None


def collect(step_ctx):
    return {"panics": str(notes["panics"])}


def finalize(ep_ctx):
    return {"summary": f"panics={notes['panics']}"}

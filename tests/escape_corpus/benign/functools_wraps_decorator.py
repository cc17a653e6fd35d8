# tries: an ordinary decorator that keeps the wrapped function's name with functools.wraps
# expect: runs

import functools

CALLS = {"act": 0}


def counted(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        CALLS["act"] += 1
        return fn(*args)
    return wrapper


@counted
def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"calls": str(CALLS["act"])}


def finalize(ep_ctx):
    return {"summary": f"act ran {CALLS['act']} times"}

# tries: profile act() with time.monotonic and time.perf_counter
# expect: runs
import time

TIMES = []


def act(t, agent, world, fw, env, helpers):
    started = time.perf_counter()
    here = agent.get_pos()
    TIMES.append(time.perf_counter() - started)
    if time.monotonic() < 0:
        return None
    return None


def collect(step_ctx):
    return {"act_ms": "%.3f" % (TIMES[-1] * 1000)}


def finalize(ep_ctx):
    return {"summary": "mean act {:.4f} ms".format(1000 * sum(TIMES) / max(len(TIMES), 1))}

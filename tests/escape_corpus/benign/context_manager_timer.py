# tries: a small context manager class used with 'with'
# expect: runs
import time


class Section:
    def __init__(self, name, log):
        self.name = name
        self.log = log

    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, kind, value, traceback):
        self.log.append((self.name, time.monotonic() - self.started))
        return False


LOG = []


def act(t, agent, world, fw, env, helpers):
    with Section("observe", LOG):
        pos = agent.get_pos()
    return None


def collect(step_ctx):
    return {"sections": str(len(LOG))}


def finalize(ep_ctx):
    return {"summary": f"{len(LOG)} timed sections"}

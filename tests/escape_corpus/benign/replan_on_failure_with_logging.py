# tries: replanning with exception handling, a log helper and itertools
# expect: runs
import itertools

LOG = []
PADDINGS = itertools.cycle([1, 0])
TARGET = {"cell": None}


def _log(message, *args):
    LOG.append(message % args if args else message)


def init(config):
    TARGET["cell"] = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is not None:
        return None
    padding = next(PADDINGS)
    try:
        intent = helpers.plan_to(world, agent.get_coord_py(), TARGET["cell"], 1.0, 0.0, padding)
        _log("planned with padding %d", padding)
        return intent
    except Exception as error:
        _log("no route with padding %d: %s", padding, str(error)[:80])
        return None


def collect(step_ctx):
    return {"log": LOG[-1] if LOG else ""}


def finalize(ep_ctx):
    return {"summary": "; ".join(LOG[:3])}

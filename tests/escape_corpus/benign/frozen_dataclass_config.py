# tries: a frozen dataclass for tuning constants and dataclasses.replace
# expect: runs
from dataclasses import dataclass, replace, asdict


@dataclass(frozen=True)
class Tuning:
    urgency: float = 1.0
    padding: int = 0
    yaw: float = 0.0


BASE = Tuning()
FAST = replace(BASE, urgency=1.4)
TARGET = {"cell": None}


def init(config):
    TARGET["cell"] = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.plan_to(world, agent.get_coord_py(), TARGET["cell"], FAST.urgency,
                               FAST.yaw, FAST.padding)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": str(asdict(FAST))}

# tries: private helpers and an if __name__ == '__main__' test block
# expect: runs
def _clamp(value, low, high):
    return max(low, min(high, value))


def _urgency(distance):
    return _clamp(distance / 10.0, 0.3, 1.5)


GOAL = {"target": None}


def init(config):
    GOAL["target"] = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.plan_to(world, agent.get_coord_py(), GOAL["target"], _urgency(8.0), 0.0)
    return None


def collect(step_ctx):
    return {"d": f"{step_ctx['distance_to_target']:.2f}"}


def finalize(ep_ctx):
    return {"summary": "success" if ep_ctx["success"] else "not yet"}


if __name__ == "__main__":
    print("local test:", _urgency(20.0))

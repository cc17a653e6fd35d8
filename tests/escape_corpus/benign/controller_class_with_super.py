# tries: a controller class hierarchy using super().__init__ and private attributes
# expect: runs
class BaseController:
    def __init__(self, name):
        self.name = name
        self._steps = 0

    def tick(self):
        self._steps += 1
        return self._steps


class PlanningController(BaseController):
    def __init__(self, padding):
        super().__init__("planner")
        self._padding = padding
        self._target = None

    def configure(self, target):
        self._target = [int(round(v)) for v in target]

    def decide(self, agent, world, helpers):
        self.tick()
        if agent.get_action_py() is None:
            return helpers.plan_to(world, agent.get_coord_py(), self._target, 1.0, 0.0,
                                   self._padding)
        return None


CONTROLLER = PlanningController(0)


def init(config):
    CONTROLLER.configure(config["target"])


def act(t, agent, world, fw, env, helpers):
    return CONTROLLER.decide(agent, world, helpers)


def collect(step_ctx):
    return {"controller": CONTROLLER.name}


def finalize(ep_ctx):
    return {"summary": f"{CONTROLLER.name} ran {CONTROLLER.tick() - 1} steps"}

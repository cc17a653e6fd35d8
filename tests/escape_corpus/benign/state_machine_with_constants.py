# tries: a state machine class with class-level constants and a dispatch dict
# expect: runs
import voxelsim


class Mode:
    CLIMB = "climb"
    CRUISE = "cruise"
    HOLD = "hold"


class Machine:
    def __init__(self):
        self.mode = Mode.CLIMB
        self.handlers = {Mode.CLIMB: self._climb, Mode.CRUISE: self._cruise, Mode.HOLD: self._hold}

    def _climb(self, agent):
        self.mode = Mode.CRUISE
        return voxelsim.ActionIntent(1.0, 0.0, [voxelsim.MoveDir.Up])

    def _cruise(self, agent):
        if agent.get_action_py() is None:
            self.mode = Mode.HOLD
            return voxelsim.ActionIntent(1.0, 0.0, [voxelsim.MoveDir.Forward] * 2)
        return None

    def _hold(self, agent):
        return None

    def step(self, agent):
        return self.handlers[self.mode](agent)


MACHINE = Machine()


def act(t, agent, world, fw, env, helpers):
    return MACHINE.step(agent)


def collect(step_ctx):
    return {"mode": MACHINE.mode}


def finalize(ep_ctx):
    return {"summary": "ended in " + MACHINE.mode}

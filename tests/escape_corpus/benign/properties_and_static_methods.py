# tries: @property, @staticmethod and @classmethod on a state holder
# expect: runs
import math


class FlightState:
    count = 0

    def __init__(self):
        self._last = None
        FlightState.count += 1

    @property
    def last(self):
        return self._last

    @last.setter
    def last(self, value):
        self._last = value

    @staticmethod
    def distance(a, b):
        return math.dist(a, b)

    @classmethod
    def fresh(cls):
        return cls()


STATE = FlightState.fresh()


def act(t, agent, world, fw, env, helpers):
    STATE.last = agent.get_pos()
    return None


def collect(step_ctx):
    return {"moved": "{:.3f}".format(FlightState.distance(STATE.last, step_ctx["agent_pos"]))}


def finalize(ep_ctx):
    return {"summary": f"instances={FlightState.count}"}

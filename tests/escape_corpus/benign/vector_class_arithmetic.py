# tries: a small Vec3 class with arithmetic dunders
# expect: runs
import math


class Vec3:
    def __init__(self, x, y, z):
        self.x, self.y, self.z = float(x), float(y), float(z)

    def __add__(self, other):
        return Vec3(self.x + other.x, self.y + other.y, self.z + other.z)

    def __sub__(self, other):
        return Vec3(self.x - other.x, self.y - other.y, self.z - other.z)

    def __mul__(self, k):
        return Vec3(self.x * k, self.y * k, self.z * k)

    def __abs__(self):
        return math.sqrt(self.x ** 2 + self.y ** 2 + self.z ** 2)

    def __repr__(self):
        return "Vec3({:.2f}, {:.2f}, {:.2f})".format(self.x, self.y, self.z)


GOAL = {"v": None, "plan": None}


def init(config):
    GOAL["v"] = Vec3(*config["target"])
    GOAL["plan"] = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.plan_to(world, agent.get_coord_py(), GOAL["plan"], 1.0, 0.0)
    return None


def collect(step_ctx):
    gap = GOAL["v"] - Vec3(*step_ctx["agent_pos"])
    return {"gap": f"{abs(gap):.2f}", "half": repr(gap * 0.5)}


def finalize(ep_ctx):
    return {"summary": f"goal {GOAL['v']!r}"}

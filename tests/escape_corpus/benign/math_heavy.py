# tries: trigonometry and rounding from math
# expect: runs

import math
from math import atan2, cos, hypot, pi, sin


def act(t, agent, world, fw, env, helpers):
    x, y, z = agent.get_pos()
    yaw = atan2(y, x)
    radius = hypot(x, y)
    wrapped = (yaw + pi) % (2 * pi) - pi
    point = (radius * cos(wrapped), radius * sin(wrapped))
    ok = math.isclose(point[0], x, abs_tol=1e-6) and math.isfinite(radius)
    return None


def collect(step_ctx):
    return {"deg": f"{math.degrees(pi / 4):.1f}", "floor": str(math.floor(2.7))}


def finalize(ep_ctx):
    return {"summary": str(round(math.sqrt(2), 3))}

# tries: waypoints kept in a dataclass with defaults and a method
# expect: runs
from dataclasses import dataclass, field
import voxelsim


@dataclass
class Route:
    moves: list = field(default_factory=list)
    urgency: float = 1.0
    sent: bool = False

    def intent(self):
        return voxelsim.ActionIntent(self.urgency, 0.0, self.moves)


ROUTE = Route([voxelsim.MoveDir.Forward, voxelsim.MoveDir.Right])


def act(t, agent, world, fw, env, helpers):
    if not ROUTE.sent:
        ROUTE.sent = True
        return ROUTE.intent()
    return None


def collect(step_ctx):
    return {"sent": str(ROUTE.sent)}


def finalize(ep_ctx):
    return {"summary": "route of {} moves".format(len(ROUTE.moves))}

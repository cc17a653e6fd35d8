# tries: ordered dataclasses in a priority queue
# expect: runs
import heapq
from dataclasses import dataclass, field


@dataclass(order=True)
class Task:
    priority: int
    name: str = field(compare=False)


QUEUE = []
heapq.heappush(QUEUE, Task(3, "log"))
heapq.heappush(QUEUE, Task(1, "plan"))
heapq.heappush(QUEUE, Task(2, "check"))
DONE = []
TARGET = {"cell": None}


def init(config):
    TARGET["cell"] = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if QUEUE:
        task = heapq.heappop(QUEUE)
        DONE.append(task.name)
        if task.name == "plan":
            return helpers.plan_to(world, agent.get_coord_py(), TARGET["cell"], 1.0, 0.0)
    return None


def collect(step_ctx):
    return {"done": ",".join(DONE)}


def finalize(ep_ctx):
    return {"summary": " > ".join(DONE)}

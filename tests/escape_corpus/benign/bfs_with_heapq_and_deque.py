# tries: grid search with heapq, deque and sets
# expect: runs

import heapq
from collections import deque, Counter


def shortest(start, goal, limit=200):
    frontier = [(0, start)]
    seen = {start}
    while frontier and len(seen) < limit:
        cost, node = heapq.heappop(frontier)
        if node == goal:
            return cost
        x, y = node
        for nxt in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if nxt not in seen:
                seen.add(nxt)
                heapq.heappush(frontier, (cost + 1, nxt))
    return -1


recent = deque(maxlen=5)
tally = Counter()


def act(t, agent, world, fw, env, helpers):
    x, y, z = agent.get_coord_py()
    recent.append((x, y))
    tally[z] += 1
    shortest((0, 0), (3, 4))
    return None


def collect(step_ctx):
    return {"recent": str(list(recent)), "common": str(tally.most_common(1))}


def finalize(ep_ctx):
    return {"summary": f"path={shortest((0, 0), (2, 2))}"}

# tries: a hand-written A* whose nodes compare with __lt__ (heapq)
# expect: runs
import heapq
import voxelsim


class Node:
    def __init__(self, cost, cell, parent=None):
        self.cost = cost
        self.cell = cell
        self.parent = parent

    def __lt__(self, other):
        return self.cost < other.cost

    def __eq__(self, other):
        return isinstance(other, Node) and self.cell == other.cell

    def __hash__(self):
        return hash(self.cell)


def _neighbours(cell):
    x, y, z = cell
    return [(x + 1, y, z), (x - 1, y, z), (x, y + 1, z), (x, y - 1, z)]


def _search(start, goal, limit=400):
    frontier = [Node(0, start)]
    seen = {start}
    while frontier and limit > 0:
        limit -= 1
        node = heapq.heappop(frontier)
        if node.cell == goal:
            path = []
            while node.parent is not None:
                path.append(node.cell)
                node = node.parent
            return list(reversed(path))
        for nxt in _neighbours(node.cell):
            if nxt not in seen:
                seen.add(nxt)
                guess = abs(goal[0] - nxt[0]) + abs(goal[1] - nxt[1])
                heapq.heappush(frontier, Node(node.cost + 1 + guess, nxt, node))
    return []


PLAN = {"path": None}


def act(t, agent, world, fw, env, helpers):
    if PLAN["path"] is None:
        here = tuple(agent.get_coord_py())
        PLAN["path"] = _search(here, (here[0] + 3, here[1] + 2, here[2]))
        moves = []
        prev = here
        for cell in PLAN["path"]:
            moves.append(voxelsim.MoveDir.Forward if cell[0] > prev[0] else
                         voxelsim.MoveDir.Back if cell[0] < prev[0] else
                         voxelsim.MoveDir.Right if cell[1] > prev[1] else voxelsim.MoveDir.Left)
            prev = cell
        return voxelsim.ActionIntent(1.0, 0.0, moves)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": f"path of {len(PLAN['path'] or [])} cells"}

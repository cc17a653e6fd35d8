"""Short hops toward the target, checking the cells ahead; climb over whatever blocks the way.

A cell is checked with a one-cell dense snapshot (collisions_py cannot tell: it never looks at
the cell its box is centred in). One intent never visits a cell twice.
"""

import voxelsim as vxs

TARGET = [60, 60, -20]
HOP = 3                     # cells per intent: short, so each decision is fresh
STATE = {"climbs": 0, "hops": 0}


def init(config):
    global TARGET
    if config.get("target") is not None:
        TARGET = [int(round(v)) for v in config["target"]]
    STATE["climbs"] = 0
    STATE["hops"] = 0


def blocked(world, cell):
    """True when anything occupies ``cell`` (a one-cell snapshot; 0 means empty)."""
    return world.dense_snapshot_py(cell, [0, 0, 0]).data_py()[0] != 0


MOVES = [(vxs.MoveDir.Forward, vxs.MoveDir.Back), (vxs.MoveDir.Right, vxs.MoveDir.Left),
         (vxs.MoveDir.Down, vxs.MoveDir.Up)]


def next_hop(world, origin, visited):
    """The free, unvisited neighbour that closes the largest gap to the target; else Up."""
    gaps = [TARGET[i] - origin[i] for i in range(3)]
    for axis in sorted(range(3), key=lambda i: -abs(gaps[i])):
        if gaps[axis] == 0:
            continue
        step = 1 if gaps[axis] > 0 else -1
        nxt = list(origin)
        nxt[axis] += step
        if tuple(nxt) not in visited and not blocked(world, nxt):
            return MOVES[axis][0 if step > 0 else 1], nxt, False
    up = [origin[0], origin[1], origin[2] - 1]       # z down: Up is -z
    if tuple(up) not in visited and not blocked(world, up):
        return vxs.MoveDir.Up, up, True
    return None, origin, False


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is not None:
        return None
    cell = agent.get_coord_py()
    visited = {tuple(cell)}          # one intent may not visit a cell twice
    moves = []
    for i in range(HOP):
        if cell == TARGET:
            break
        move, cell, climbed = next_hop(world, cell, visited)
        if move is None:
            break
        STATE["climbs"] += 1 if climbed else 0
        visited.add(tuple(cell))
        moves.append(move)
    if not moves:                    # boxed in (tree tops count as occupied): let A* find a way
        for padding in (2, 1, 0):
            try:
                return helpers.plan_to(world, agent.get_coord_py(), TARGET, 0.7, 0.0, padding), "Replace"
            except Exception:
                continue
        return None
    STATE["hops"] += 1
    return helpers.intent(0.7, 0.0, moves), "Replace"


def collect(step_ctx):
    return {"collisions": str(step_ctx["collisions_count"]), "climbs": str(STATE["climbs"])}


def finalize(ep_ctx):
    return {"summary": f"{ep_ctx['reason']}: {STATE['hops']} hops, {STATE['climbs']} climbs, "
                       f"{ep_ctx['collisions_total']} collisions"}

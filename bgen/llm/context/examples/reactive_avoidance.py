"""Short hops toward the target, checking the cells ahead; climb over whatever blocks the way."""

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
    centre = [float(cell[0]), float(cell[1]), float(cell[2])]
    return len(world.collisions_py(centre, [0.45, 0.45, 0.45])) > 0


def step_toward(origin):
    """The move that closes the largest gap to the target, and the cell it leads to."""
    gaps = [TARGET[i] - origin[i] for i in range(3)]
    axis = max(range(3), key=lambda i: abs(gaps[i]))
    if gaps[axis] == 0:
        return None, origin
    positive = gaps[axis] > 0
    move = [(vxs.MoveDir.Forward, vxs.MoveDir.Back), (vxs.MoveDir.Right, vxs.MoveDir.Left),
            (vxs.MoveDir.Down, vxs.MoveDir.Up)][axis][0 if positive else 1]
    nxt = list(origin)
    nxt[axis] += 1 if positive else -1
    return move, nxt


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is not None:
        return None
    cell = agent.get_coord_py()
    moves = []
    for i in range(HOP):
        move, nxt = step_toward(cell)
        if move is None:
            break
        if blocked(world, nxt):
            move, nxt = vxs.MoveDir.Up, [cell[0], cell[1], cell[2] - 1]
            STATE["climbs"] += 1
            if blocked(world, nxt):
                break
        moves.append(move)
        cell = nxt
    if not moves:
        return None
    STATE["hops"] += 1
    return helpers.intent(0.7, 0.0, moves), "Replace"


def collect(step_ctx):
    return {"collisions": str(step_ctx["collisions_count"]), "climbs": str(STATE["climbs"])}


def finalize(ep_ctx):
    return {"summary": f"{ep_ctx['reason']}: {STATE['hops']} hops, {STATE['climbs']} climbs, "
                       f"{ep_ctx['collisions_total']} collisions"}

# tries: statistics with Counter, defaultdict and a class with __str__
# expect: runs
from collections import Counter, defaultdict


class Stats:
    def __init__(self):
        self.moves = Counter()
        self.by_z = defaultdict(list)

    def add(self, coord):
        self.moves[coord[2]] += 1
        self.by_z[coord[2]].append(coord[:2])

    def __str__(self):
        common = self.moves.most_common(1)
        return f"most time at z={common[0][0]}" if common else "no data"


STATS = Stats()


def act(t, agent, world, fw, env, helpers):
    STATS.add(list(agent.get_coord_py()))
    return None


def collect(step_ctx):
    return {"stats": str(STATS)}


def finalize(ep_ctx):
    return {"summary": str(STATS)}

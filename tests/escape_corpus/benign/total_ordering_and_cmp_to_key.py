# tries: functools.total_ordering and cmp_to_key for sorting candidates
# expect: runs
import functools


@functools.total_ordering
class Candidate:
    def __init__(self, cell, score):
        self.cell = cell
        self.score = score

    def __eq__(self, other):
        return self.score == other.score

    def __lt__(self, other):
        return self.score < other.score


def _compare(a, b):
    return (a[0] > b[0]) - (a[0] < b[0])


BEST = []


def act(t, agent, world, fw, env, helpers):
    x, y, z = agent.get_coord_py()
    options = [Candidate((x + dx, y, z), abs(dx)) for dx in (-1, 0, 1)]
    BEST.append(max(options).cell)
    ranked = sorted([(3, "c"), (1, "a"), (2, "b")], key=functools.cmp_to_key(_compare))
    return None


def collect(step_ctx):
    return {"best": str(BEST[-1])}


def finalize(ep_ctx):
    return {"summary": f"{len(BEST)} decisions"}

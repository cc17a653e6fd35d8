# tries: a path class with __len__, __iter__, __getitem__ and __contains__
# expect: runs
class Path:
    def __init__(self):
        self._cells = []

    def add(self, cell):
        if cell not in self:
            self._cells.append(cell)

    def __len__(self):
        return len(self._cells)

    def __iter__(self):
        return iter(self._cells)

    def __getitem__(self, index):
        return self._cells[index]

    def __contains__(self, cell):
        return cell in self._cells

    def __repr__(self):
        return f"Path({len(self)} cells)"


PATH = Path()


def act(t, agent, world, fw, env, helpers):
    PATH.add(tuple(agent.get_coord_py()))
    return None


def collect(step_ctx):
    return {"path": repr(PATH), "first": str(PATH[0])}


def finalize(ep_ctx):
    return {"summary": f"visited {len(PATH)} cells: {list(PATH)[:3]}"}

# tries: a small class with class attributes, methods and a custom exception
# expect: runs

class PlanFailed(Exception):
    pass


class Memory:
    visits = 0
    seen = []

    def remember(self, coord):
        Memory.visits += 1
        if coord not in self.seen:
            self.seen.append(coord)
        return len(self.seen)


memory = Memory()


def act(t, agent, world, fw, env, helpers):
    count = memory.remember(tuple(agent.get_coord_py()))
    try:
        if count < 0:
            raise PlanFailed("impossible")
    except PlanFailed as error:
        print("plan failed:", error)
    return None


def collect(step_ctx):
    return {"visits": str(Memory.visits)}


def finalize(ep_ctx):
    return {"summary": f"cells={len(Memory.seen)}"}

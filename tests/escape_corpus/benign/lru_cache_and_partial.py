# tries: functools.lru_cache on a pure helper and functools.partial
# expect: runs
import functools
import voxelsim


@functools.lru_cache(maxsize=128)
def _moves_for(dx, dy):
    moves = []
    moves += [voxelsim.MoveDir.Forward] * max(dx, 0)
    moves += [voxelsim.MoveDir.Right] * max(dy, 0)
    return tuple(moves)


make_intent = functools.partial(voxelsim.ActionIntent, 1.0, 0.0)
SENT = []


def act(t, agent, world, fw, env, helpers):
    if not SENT:
        SENT.append(t)
        return make_intent(list(_moves_for(2, 1)))
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    info = _moves_for.cache_info()
    return {"summary": f"cache hits={info.hits} misses={info.misses}"}

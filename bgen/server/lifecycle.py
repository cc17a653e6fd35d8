"""The run lifecycle: every state, every event and every legal transition, in one table.

::

    state        start     terminate   complete     fail        interrupt
    ---------    -------   ---------   ----------   ---------   -----------
    queued       running   terminated  -            -           interrupted
    running      -         stopping    done         failed      interrupted
    stopping     -         stopping    terminated   terminated  interrupted
    done         -         -           -            -           -
    failed       -         -           -            -           -
    terminated   -         -           -            -           -
    interrupted  -         -           -            -           -

``stopping`` is a running run whose stop was asked for: its loop is winding down (workers are
killed within a second) and it ends ``terminated`` whatever the loop returns. ``interrupt`` is
the server shutting down (or finding, at start-up, a run that was active when it died).
Anything not in the table raises ``LifecycleError`` naming the event and the state.
"""

from __future__ import annotations

from bgen.errors import Conflict

QUEUED = "queued"
RUNNING = "running"
STOPPING = "stopping"
DONE = "done"
FAILED = "failed"
TERMINATED = "terminated"
INTERRUPTED = "interrupted"

EVENTS = ("start", "terminate", "complete", "fail", "interrupt")

TRANSITIONS: dict[str, dict[str, str]] = {
    QUEUED: {"start": RUNNING, "terminate": TERMINATED, "interrupt": INTERRUPTED},
    RUNNING: {"terminate": STOPPING, "complete": DONE, "fail": FAILED, "interrupt": INTERRUPTED},
    STOPPING: {"terminate": STOPPING, "complete": TERMINATED, "fail": TERMINATED,
               "interrupt": INTERRUPTED},
    DONE: {},
    FAILED: {},
    TERMINATED: {},
    INTERRUPTED: {},
}

STATES = tuple(TRANSITIONS)
ACTIVE_STATES = (QUEUED, RUNNING, STOPPING)
FINAL_STATES = tuple(state for state, moves in TRANSITIONS.items() if not moves)

# The progress message that closes a run's event stream, per final state. Clients of the
# reference stop on done / error / terminated; an interrupted run did not finish: error.
FINAL_MESSAGE = {DONE: "done", FAILED: "error", TERMINATED: "terminated", INTERRUPTED: "error"}

# Why a run ended, by its final state. A completed run keeps the loop's own reason; every other
# final state is its own reason, so ``status`` and ``stopped_reason`` never disagree (an
# interrupted run is ``interrupted`` in both, whatever its loop said while being stopped).
LOOP_REASONS = ("iterations_done", "success_threshold", "objective_converged", "token_budget",
                "disk_budget", "provider_error")
STOPPED_REASONS = {DONE: LOOP_REASONS, FAILED: (FAILED,), TERMINATED: (TERMINATED,),
                   INTERRUPTED: (INTERRUPTED,)}


class LifecycleError(Conflict):
    """An event that the run's current state does not allow (HTTP 409)."""

    def __init__(self, event: str, state: str):
        super().__init__(f"cannot {event} a run that is {state}", field="run_id")
        self.event = event
        self.state = state


def next_state(state: str, event: str) -> str:
    """The state after ``event`` in ``state``; raises ``LifecycleError`` if the table forbids it."""
    if state not in TRANSITIONS:
        raise ValueError(f"run state: expects one of {', '.join(STATES)}, actual: {state!r}")
    if event not in EVENTS:
        raise ValueError(f"run event: expects one of {', '.join(EVENTS)}, actual: {event!r}")
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise LifecycleError(event, state) from None


def is_final(state: str) -> bool:
    return state in FINAL_STATES


def stopped_reason(state: str, loop_reason: str | None) -> str | None:
    """``stopped_reason`` of a run in ``state`` whose loop reported ``loop_reason``.

    None while the run is active; the state itself for failed / terminated / interrupted; for
    done, the loop's reason (``iterations_done`` when the loop gave none it is known to give).
    """
    if not is_final(state):
        return None
    if state != DONE:
        return state
    return loop_reason if loop_reason in LOOP_REASONS else "iterations_done"

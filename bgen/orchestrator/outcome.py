"""How a run ended, as run.json says it: ``status``, ``stopped_reason`` and ``error``.

The iterate CLI and the server write the same pairs (``OUTCOMES``; docs/server.md has the
table). A run that failed or was stopped also carries ``error: {"message", "phase"}``: what
happened in plain words and the phase the run was in (``PHASES``), followed from its events
by ``PhaseTracker``.
"""

from __future__ import annotations

from bgen.errors import ConfigError, ProviderError

# phase -> what the run was doing
PHASES = {
    "queued": "waiting for a free slot (server only)",
    "setup": "before the first iteration: settings, backend, executor",
    "generate": "writing, taking, checking or repairing an iteration's policy",
    "episodes": "flying an iteration's episodes and evaluating them",
    "holdout": "flying the best policy on the holdout seeds",
    "finish": "after the last iteration: writing the results",
}

# (status, stopped_reason) -> (error present, when)
OUTCOMES = {
    ("done", "iterations_done"): (False, "every iteration ran"),
    ("done", "success_threshold"): (False, "an iteration reached the success threshold"),
    ("done", "objective_converged"): (False, "with a task spec's objective: two iterations past "
                                             "the threshold brought no improvement"),
    ("done", "token_budget"): (False, "the token budget was spent (iterate --token-budget)"),
    ("done", "disk_budget"): (False, "the run's folder reached its disk budget (--max-run-gb); "
                                     "no more episodes were started"),
    ("done", "provider_error"): (True, "the LLM provider failed after a best policy existed; it is kept"),
    ("failed", "failed"): (True, "an error ended the run: provider, simulator, settings or a bug"),
    ("terminated", "terminated"): (True, "stopped on request: Ctrl-C, POST /runs/<id>/terminate, "
                                         "a terminate message"),
    ("interrupted", "interrupted"): (True, "the server shut down or died during the run (server only)"),
}

# The stopped_reason of each final status that ends a run before the loop says why.
STOPPED_REASON = {"failed": "failed", "terminated": "terminated", "interrupted": "interrupted"}


def error_record(message: str, phase: str) -> dict:
    """run.json's ``error``: ``{"message", "phase"}``; ValueError for an unknown phase."""
    if phase not in PHASES:
        raise ValueError(f"phase: expects one of {', '.join(PHASES)}, actual: {phase!r}")
    return {"message": str(message), "phase": phase}


def failure_phase(error: BaseException, current: str) -> str:
    """The phase to blame for ``error`` raised while the run was in ``current``: bad settings
    are ``setup``, a provider failure ``generate``, anything else where the run was."""
    if isinstance(error, ConfigError):
        return "setup"
    if isinstance(error, ProviderError):
        return "generate"
    return current


class PhaseTracker:
    """Follows a run's events and knows its phase; ``see(event)`` for each event in order."""

    def __init__(self, phase: str = "setup"):
        self.phase = phase

    def see(self, event: dict) -> str:
        kind = event.get("type")
        if kind == "iteration":
            self.phase = "generate"
        elif kind == "policy" and event.get("ok"):
            self.phase = "episodes"
        elif kind in ("step", "episode_summary") and event.get("phase") == "holdout":
            self.phase = "holdout"
        elif kind in ("step", "episode_summary") and self.phase == "generate":
            self.phase = "episodes"
        elif kind in ("critique", "holdout"):
            self.phase = "finish"       # until the next iteration or the holdout episodes start
        return self.phase

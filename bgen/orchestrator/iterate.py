"""``python -m bgen.orchestrator.iterate``: generate, run, critique and refine a policy.

    # evaluate a policy file, no LLM
    python -m bgen.orchestrator.iterate --policy bgen/llm/context/examples/move_to_target.py \\
        --iterations 1 --episodes 3

    # let the LLM write and refine it (key in $LLVPN_API_KEY)
    python -m bgen.orchestrator.iterate --use-llm --user-goal "Reach the target safely" \\
        --iterations 5 --episodes 4

Writes the run directory (``--outdir``, default ``runs/<UTC timestamp>-<goal slug>``, new for
every run): run.json, events.jsonl, iter_<n>/..., policy.best.py. A directory that already
holds something is refused unless ``--resume`` (continue after its last finished iteration)
or ``--overwrite`` (delete it first) is given. run.json ends with a ``status`` /
``stopped_reason`` pair and, for a failed or stopped run, ``error: {"message", "phase"}``
(``bgen.orchestrator.outcome``). Without ``--use-llm`` each iteration flies the given policy on
new seeds (one ``warning:`` line says so). Defaults come from ``bgen.defaults``.
Prints one progress line per stage. Exit codes: 0 finished, 1 failed (provider or simulator),
2 bad flags or missing API key (one line, no traceback), 130 stopped with Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from bgen import defaults as D
from bgen.errors import BgenError, ConfigError
from bgen.llm.client import (DEFAULT_API_KEY_ENV, DEFAULT_BACKOFF_CAP_S, DEFAULT_MAX_RETRIES,
                             DEFAULT_TIMEOUT_S, DEFAULT_URLS, AUTH_MODES, LLMClient, LLMSettings)
from bgen.orchestrator import evaluator
from bgen.orchestrator.loop import LoopConfig, LoopResult, run_loop
from bgen.runner import taskspec
from bgen.runner.executor import add_executor_arguments, executor_from_args
from bgen.runner.run_policy import seed_number
from bgen.orchestrator.outcome import STOPPED_REASON, PhaseTracker, error_record, failure_phase
from bgen.orchestrator.runlog import EventLog, iteration_policy_file

PROG = "iterate"
OPENAI_DIRECT_URL = "https://api.openai.com"
OPENAI_DIRECT_KEY_ENV = "OPENAI_API_KEY"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) and exits 2."""

    def error(self, message):
        print(f"{PROG}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=f"python -m bgen.orchestrator.{PROG}",
                 description="Generate a VoxelSim drone policy with an LLM, run it, critique it, iterate.")
    run = ap.add_argument_group("run")
    run.add_argument("--policy", help="policy .py to evaluate (without --use-llm) or to start from "
                                      "(with it); default none: required without --use-llm")
    run.add_argument("--outdir", default=None,
                     help="run directory (default runs/<UTC timestamp>-<goal slug>, new for every run)")
    existing = run.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the run in --outdir after its last finished iteration")
    existing.add_argument("--overwrite", action="store_true",
                          help="delete what --outdir holds before running")
    run.add_argument("--iterations", type=int, default=D.value("iterations"),
                     help=D.help_text("iterations", "iterations; without --use-llm each one flies the "
                                      "same policy on new seeds"))
    run.add_argument("--episodes", type=int, default=D.value("episodes"),
                     help=D.help_text("episodes", "episodes per iteration"))
    run.add_argument("--seed-start", type=seed_number, default=D.value("seed_start"),
                     help=D.help_text("seed_start", "first episode seed"))
    run.add_argument("--max-steps", type=int, default=D.value("max_steps"),
                     help=D.help_text("max_steps", "steps per episode"))
    run.add_argument("--task-spec", default=None, metavar="FILE",
                     help="task spec JSON file the episodes are judged by (no spec call to the "
                          "LLM); default: from the goal with --use-llm, else reach the target")
    run.add_argument("--target", default=None,
                     help="target as x,y,z (default: the scenario's, 60,60,-20 on terrain)")
    run.add_argument("--use-wind-farm", action="store_true", help="wind-farm scenario instead of random terrain")
    run.add_argument("--render", action="store_true", help="stream to a running renderer")
    run.add_argument("--backend", default="auto", choices=("auto", "voxelsim", "embedded"),
                     help="simulator backend (default auto: voxelsim if importable, else embedded)")
    run.add_argument("--workers", type=int, default=D.value("workers"),
                     help=D.help_text("workers", "parallel episode workers"))
    add_executor_arguments(run)
    run.add_argument("--candidates", type=int, default=D.value("candidates"),
                     help=D.help_text("candidates", "policies generated per iteration"))
    run.add_argument("--max-run-gb", type=D.run_gigabytes, default=D.MAX_RUN_BYTES, metavar="GB",
                     dest="max_run_bytes",
                     help="disk budget of the run directory in GiB: no iteration starts that "
                          "could pass it, each episode's records are capped at its share "
                          "(default 8)")
    run.add_argument("--holdout-seeds", type=int, default=D.value("holdout_seeds"),
                     help=D.help_text("holdout_seeds", "evaluate the best policy on this many unseen "
                                      "seeds at the end"))
    run.add_argument("--success-threshold", type=float, default=D.value("success_threshold"),
                     help=D.help_text("success_threshold", "stop once an iteration's success rate "
                                      "reaches this"))
    run.add_argument("--max-repairs", type=int, default=D.value("max_repairs"),
                     help=D.help_text("max_repairs", "LLM repairs of a policy that fails to load"))
    llm = ap.add_argument_group("LLM")
    llm.add_argument("--use-llm", action="store_true", help="generate and refine the policy with an LLM")
    llm.add_argument("--user-goal", default="Reach the target while minimizing collisions.",
                     help="the goal in plain words (default %(default)r)")
    llm.add_argument("--provider", default=D.value("provider"), choices=("anthropic", "openai", "openai-direct"),
                     help=D.help_text("provider", "wire API; openai-direct = openai at api.openai.com "
                                      "with $OPENAI_API_KEY"))
    llm.add_argument("--model", default=D.value("model"), help=D.help_text("model", "model"))
    llm.add_argument("--max-tokens", type=int, default=D.value("max_tokens"),
                     help=D.help_text("max_tokens", "the LLM's reply budget in tokens"))
    llm.add_argument("--temperature", type=float, default=D.value("temperature"),
                     help=D.help_text("temperature", "sampling temperature"))
    llm.add_argument("--anthropic-url", "--llvpn-url", dest="anthropic_url", default=None,
                     help="Anthropic-API endpoint: an LLVPN gateway service URL, a base URL or a full "
                          "URL (default the LLVPN gateway's Anthropic service; --llvpn-url is an alias)")
    llm.add_argument("--openai-url", default=None,
                     help="OpenAI-API endpoint: gateway, https://api.openai.com, or a local server "
                          "such as http://127.0.0.1:11434/v1 (default the LLVPN gateway's OpenAI service)")
    llm.add_argument("--api-key-env", default=None,
                     help=D.help_text("api_key_env", "environment variable holding the key "
                                      "(openai-direct: OPENAI_API_KEY)"))
    llm.add_argument("--no-api-key", action="store_true", help="send no key (local servers)")
    llm.add_argument("--auth", default="auto", choices=AUTH_MODES,
                     help="how the key is sent (default auto: x-api-key to api.anthropic.com, "
                          "Bearer to gateways and OpenAI)")
    llm.add_argument("--llm-timeout", type=float, default=DEFAULT_TIMEOUT_S,
                     help=D.help_text("llm_timeout", "seconds per LLM request"))
    llm.add_argument("--llm-retries", type=int, default=DEFAULT_MAX_RETRIES,
                     help=D.help_text("llm_retries", "retries of a failed LLM request (429/5xx, "
                                      "overloaded, connection errors, timeouts); each prints a warning line"))
    llm.add_argument("--llm-backoff-cap", type=float, default=DEFAULT_BACKOFF_CAP_S,
                     help=D.help_text("llm_backoff_cap", "longest wait in seconds between LLM retries"))
    llm.add_argument("--token-budget", type=int, default=None,
                     help="stop cleanly once this many tokens (in + out) are spent (default none: no limit)")
    return ap


def parse_target(text: str | None):
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ConfigError(f"--target: expects x,y,z numbers, actual: {text!r}", field="target")
    return values


def llm_settings(args) -> LLMSettings:
    provider, url, key_env = args.provider, None, args.api_key_env
    if provider == "openai-direct":
        provider = "openai"
        url = args.openai_url or OPENAI_DIRECT_URL
        key_env = key_env or OPENAI_DIRECT_KEY_ENV
    elif provider == "openai":
        url = args.openai_url
    else:
        url = args.anthropic_url
    return LLMSettings(provider=provider, model=args.model or D.MODELS[provider], max_tokens=args.max_tokens,
                       temperature=args.temperature, url=url or DEFAULT_URLS[provider],
                       api_key_env=key_env or DEFAULT_API_KEY_ENV,
                       auth="none" if args.no_api_key else args.auth,
                       timeout_s=args.llm_timeout, max_retries=args.llm_retries,
                       backoff_cap_s=args.llm_backoff_cap).validated()


def build_config(args) -> tuple[LoopConfig, LLMClient | None]:
    """LoopConfig and LLM client from the flags; ConfigError for anything wrong (before any I/O)."""
    from bgen.runner.episode import EpisodeConfig
    from bgen.runner.run_policy import read_task_spec
    from bgen.sim import load_backend

    target = parse_target(args.target)
    policy_code = None
    if args.policy:
        try:
            policy_code = Path(args.policy).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"--policy: cannot read {args.policy!r}: {error.strerror}", field="policy")
    if not args.use_llm and policy_code is None:
        raise ConfigError("--policy: expects a policy file when --use-llm is not given", field="policy")
    load_backend(args.backend)      # fails here, in one line, when voxelsim is asked for but absent
    task_spec = read_task_spec(args.task_spec)
    episode = EpisodeConfig(max_steps=5000 if args.max_steps is None else args.max_steps, target=target,
                            scenario="wind_farm" if args.use_wind_farm else "terrain",
                            render=args.render, backend=args.backend)
    client = None
    settings = None
    if args.use_llm:
        settings = llm_settings(args)
        client = LLMClient(settings)        # ConfigError naming the env var when the key is missing
    config = LoopConfig(user_goal=args.user_goal, iterations=args.iterations, episodes=args.episodes,
                        seed_start=args.seed_start, candidates=args.candidates,
                        holdout_seeds=args.holdout_seeds, success_threshold=args.success_threshold,
                        policy_code=policy_code, llm=settings, max_repairs=args.max_repairs,
                        token_budget=args.token_budget, workers=args.workers, episode=episode,
                        task_spec=task_spec, derive_max_steps=args.max_steps is None,
                        max_run_bytes=args.max_run_bytes)
    return config.validated(), client


# --- the run directory ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """What a run directory says about where to continue."""

    next_iteration: int                 # the first iteration not finished
    code: str | None = None             # the chosen policy of the last finished iteration
    critique: str | None = None         # its critique
    best_iteration: int | None = None   # the best finished iteration (evaluator.rank_key)
    best_aggregate: dict | None = None


def goal_slug(goal: str, limit: int = 40) -> str:
    """``"Reach the target, safely!"`` -> ``"reach-the-target-safely"`` (a-z 0-9 and -, at most ``limit``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", goal.lower()).strip("-")[:limit].rstrip("-")
    return slug or "run"


def default_outdir(goal: str, now: float, root: Path = Path("runs")) -> Path:
    """``runs/<YYYYmmdd-HHMMSS>-<goal slug>`` (UTC); ``-2``, ``-3``, ... if that one exists."""
    base = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{goal_slug(goal)}"
    candidate, n = root / base, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{base}-{n}"
    return candidate


def finished_iteration(it_dir: Path) -> tuple[str, str, dict] | None:
    """(chosen code, critique, aggregate) of an iteration the loop finished, else None."""
    policy = iteration_policy_file(it_dir)
    if policy is None:
        return None
    try:
        code = policy.read_text(encoding="utf-8")
        critique = (it_dir / "critique.txt").read_text(encoding="utf-8").rstrip("\n")
        aggregate = json.loads((it_dir / "aggregate.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (code, critique, aggregate) if isinstance(aggregate, dict) else None


def resume_point(run_dir: Path) -> ResumePoint:
    """Read what the loop wrote: iterations 0, 1, ... while each is finished (its policy,
    critique and aggregate are on disk); the loop continues with the next one."""
    point = ResumePoint(0)
    n = 0
    while (found := finished_iteration(run_dir / f"iter_{n}")) is not None:
        code, critique, aggregate = found
        best, best_aggregate = point.best_iteration, point.best_aggregate
        if best_aggregate is None or evaluator.rank_key(aggregate) > evaluator.rank_key(best_aggregate):
            best, best_aggregate = n, aggregate
        point = ResumePoint(n + 1, code, critique, best, best_aggregate)
        n += 1
    return point


def prepare_outdir(args, now: float) -> tuple[Path, ResumePoint | None]:
    """The run directory per --outdir / --resume / --overwrite; ConfigError when refused."""
    if args.outdir is None:
        if args.resume:
            raise ConfigError("--resume: expects --outdir naming the run to continue", field="outdir")
        return default_outdir(args.user_goal, now), None
    run_dir = Path(args.outdir)
    holds_something = run_dir.is_dir() and any(run_dir.iterdir())
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--outdir: {run_dir} is a file, not a directory", field="outdir")
    if args.resume:
        if not holds_something:
            raise ConfigError(f"--resume: {run_dir} holds no run to continue", field="outdir")
        return run_dir, resume_point(run_dir)
    if holds_something:
        if not args.overwrite:
            raise ConfigError(f"--outdir: {run_dir} is not empty; pass --resume to continue the run "
                              "in it or --overwrite to replace it", field="outdir")
        shutil.rmtree(run_dir)
    return run_dir, None


def resumed_config(config: LoopConfig, point: ResumePoint) -> LoopConfig:
    """The loop's config to continue at ``point`` (from scratch when nothing was finished)."""
    if point.next_iteration == 0:
        return config
    return dataclasses.replace(config, first_iteration=point.next_iteration, existing_code=point.code,
                               critique=point.critique, policy_code=None).validated()


def prior_best(point: ResumePoint | None, run_dir: Path) -> tuple[int, str, dict] | None:
    """(iteration, code, aggregate) of the best iteration finished before a resume, or None."""
    if point is None or point.best_aggregate is None:
        return None
    code = iteration_policy_file(run_dir / f"iter_{point.best_iteration}").read_text(encoding="utf-8")
    return point.best_iteration, code, point.best_aggregate


# --- progress lines ---------------------------------------------------------------------------

def progress_line(event: dict) -> str | None:
    """The terminal line for an event, or None for events not worth a line (steps)."""
    kind = event.get("type")
    it = event.get("iteration")
    where = f"iter {it}" + (f" cand {event['candidate']}" if event.get("candidate") else "")
    if kind == "iteration":
        return (f"iter {it}: starting ({event['candidates']} candidate(s), seeds "
                f"{', '.join(str(s) for s in event['seeds'])})")
    if kind == "policy":
        if event["source"] == "given":
            what = "policy given"
        else:
            what = (f"policy {'repaired' if event['source'] == 'repair' else 'generated'} "
                    f"({len(event['code'])} chars; {event['tokens_in']} in / {event['tokens_out']} "
                    f"out tokens; {event['latency_s']:.1f} s)")
        status = "loads" if event["ok"] else f"does not load: {event['error']}"
        return f"{where}: {what}, {status}"
    if kind == "episode_summary":
        head = f"{where}: {'holdout ' if event.get('phase') == 'holdout' else ''}seed {event.get('seed')}: "
        detail = f"{event.get('reason')} after {event.get('steps')} steps, {event.get('collisions_total')} collisions"
        error = event.get("error")
        if isinstance(error, dict) and error.get("message"):
            line = f" at line {error['lineno']}" if error.get("lineno") else ""
            detail += f"; {error.get('type')}{line}: {str(error['message'])[:160]}"
        return head + detail
    if kind == "task":
        checks = ", ".join(c["kind"] for c in event["task_spec"]["checks"])
        objective = (event["task_spec"].get("objective") or {}).get("minimize")
        return (f"task ({event['source']}): checks {checks}"
                + (f"; minimize {objective}" if objective else "")
                + f"; {event['max_steps']} steps per episode")
    if kind == "critique":
        agg = event["aggregate"]
        steps = (agg.get("steps") or {}).get("mean")
        collisions = (agg.get("collisions_total") or {}).get("mean")
        checks = "; ".join(f"{c['kind']} {c['passed']}/{c['episodes']}"
                           for c in agg.get("checks") or [])
        score = taskspec.score_text(agg.get("mean_score", 0.0), agg["successes"] == agg["episodes"])
        checks = (f"; checks {checks} (mean score {score})"
                  if checks else "")
        return (f"{where}: success {agg['successes']}/{agg['episodes']} ({agg['success_rate']:.2f}), "
                f"steps mean {steps if steps is not None else 'n/a'}, collisions mean "
                f"{collisions if collisions is not None else 'n/a'}; best so far: iter "
                f"{event['best_iteration']} ({event['best_success_rate']:.2f})" + checks)
    if kind == "holdout":
        agg = event["aggregate"]
        return (f"holdout: best policy (iter {it}) succeeded {agg['successes']}/{agg['episodes']} "
                f"on unseen seeds {', '.join(str(s) for s in event['seeds'])}")
    if kind == "warning":
        return f"warning: {event.get('message')}"
    return None


def summary_line(result: LoopResult, run_dir: Path) -> str:
    best = "none"
    if result.best_iteration is not None:
        best = f"iter {result.best_iteration} (success {result.best_aggregate['success_rate']:.2f})"
    note = f" ({result.stop_note})" if result.stop_note else ""
    return (f"done: best {best}; stopped: {result.stopped_reason}{note}; tokens {result.tokens['in']} in / "
            f"{result.tokens['out']} out; LLM {result.llm_latency_s:.1f} s; episodes "
            f"{result.episodes_wall_s:.1f} s for {result.sim_time_s:.1f} s of simulated flight; "
            f"wall {result.wall_time_s:.1f} s; files in {run_dir}")


# --- main -------------------------------------------------------------------------------------

def _request_record(args) -> dict:
    """The flags as given (no secret: only the key's variable name)."""
    return {k: v for k, v in vars(args).items()}


def _write_run_json(path: Path, record: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def main(argv=None) -> int:
    from bgen.runner.run_policy import points_attached
    args = build_parser().parse_args(points_attached(sys.argv[1:] if argv is None else list(argv)))
    try:
        config, client = build_config(args)
        executor = executor_from_args(args, workers=args.workers)
        run_dir, point = prepare_outdir(args, time.time())
        if point is not None:
            if point.next_iteration >= config.iterations:
                print(f"nothing to resume: iterations 0..{point.next_iteration - 1} of {run_dir} are "
                      f"finished (--iterations {config.iterations})", flush=True)
                return EXIT_OK
            config = resumed_config(config, point)
    except ConfigError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    from bgen.runner.isolation import cached_report, report_line
    print(report_line(cached_report(config.episode.render)), file=sys.stderr, flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = EventLog(run_dir / "events.jsonl")
    record = {"request": _request_record(args), "config": config.to_dict(), "status": "running",
              "started_at": time.time(), "finished_at": None, "best_iteration": None,
              "resumed_at_iteration": point.next_iteration if point is not None else None}
    record["request"]["outdir"] = str(run_dir)
    if point is not None:
        print(f"resuming {run_dir} at iteration {point.next_iteration}", flush=True)
    _write_run_json(run_dir / "run.json", record)
    print(f"run directory {run_dir} (backend {args.backend}, {config.episode.scenario}, "
          f"{'LLM ' + config.llm.provider + ' ' + config.llm.model if config.llm else 'no LLM'})", flush=True)

    stop_event = threading.Event()

    def on_sigint(signum, frame):
        print("stopping (Ctrl-C again to abort)...", file=sys.stderr, flush=True)
        stop_event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None

    phase = PhaseTracker()

    def emit(event: dict) -> None:
        log.append(event)
        phase.see(event)
        line = progress_line(event)
        if line:
            print(line, flush=True)

    status, code = "done", EXIT_OK
    result = None
    error_info = None       # run.json's error: {"message", "phase"} of a failed or stopped run
    try:
        result = run_loop(config, run_dir, emit, stop_event, llm_client=client,
                          episode_runner=executor.run_episodes,
                          prior_best=prior_best(point, run_dir))
        if result.stopped_reason == "terminated":
            status, code = "terminated", EXIT_INTERRUPTED
            error_info = error_record("stopped with Ctrl-C", phase.phase)
            log.append({"type": "terminated", "error": error_info})
        else:
            if result.error:
                error_info = error_record(result.error, "generate")
            log.append({"type": "done", **result.to_dict()})
        print(summary_line(result, run_dir), flush=True)
    except BgenError as error:
        status, code = "failed", (EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILED)
        error_info = error_record(str(error), failure_phase(error, phase.phase))
        log.append({"type": "error", "message": str(error), "phase": error_info["phase"]})
        print(f"{PROG}: error: {error}", file=sys.stderr)
    except KeyboardInterrupt:       # a second Ctrl-C: no waiting for the loop to wind down
        status, code = "terminated", EXIT_INTERRUPTED
        error_info = error_record("aborted with a second Ctrl-C", phase.phase)
        log.append({"type": "terminated", "error": error_info})
        print(f"{PROG}: aborted", file=sys.stderr)
    except Exception as error:       # a bug: keep the traceback in the run directory
        status, code = "failed", EXIT_FAILED
        (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        error_info = error_record(f"internal error ({type(error).__name__}: {error}); see error.log",
                                  phase.phase)
        log.append({"type": "error", "message": "internal error, see error.log", "phase": phase.phase})
        print(f"{PROG}: error: internal error ({type(error).__name__}: {error}); see {run_dir / 'error.log'}",
              file=sys.stderr)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        record.update(status=status, finished_at=time.time(), error=error_info,
                      stopped_reason=STOPPED_REASON.get(status))
        if result is not None:
            record.update(best_iteration=result.best_iteration, task_spec=result.task_spec,
                          result=result.to_dict())
            if status == "done":
                record["stopped_reason"] = result.stopped_reason
        _write_run_json(run_dir / "run.json", record)
        log.close()
        executor.close()
    return code


if __name__ == "__main__":
    sys.exit(main())

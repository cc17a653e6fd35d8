"""A scripted stand-in for ``bgen.orchestrator.loop``: the same call, files and events, no LLM, no simulator.

``python bgen_server.py --loop-module tests.fakeloop`` serves runs with it. Episodes
advance 2,000 steps per wall-clock second (so a long run can be stopped mid-way in a test), the
policy always reaches the target, and with ``render`` on it connects to the renderer ports like
voxelsim's RendererClient and sends a world frame per episode and an agents frame every 50 steps.
A policy containing ``FAKE_LOOP_FAIL`` makes the loop raise a ProviderError (the failed-run path).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bgen.errors import ProviderError
from bgen.orchestrator.runlog import policy_file_name
from bgen.server.framing import encode_frame

STEPS_PER_PAUSE = 100
PAUSE_S = 0.05

TEMPLATE_POLICY = '''import voxelsim as vxs


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.plan_to(world, agent.get_coord_py(), [60, 60, -20], urgency=0.8, yaw=0.0)
    return None
'''


@dataclass(frozen=True)
class EpisodeConfig:
    max_steps: int = 5000
    delta: float = 0.01
    target: tuple | None = None
    scenario: str = "terrain"
    render: bool = False
    render_host: str = "127.0.0.1"
    render_ports: tuple = (8080, 8081, 8090, 9090)
    pov_min_dt_world: float = 0.05
    use_px4: bool = True
    backend: str = "auto"


@dataclass(frozen=True)
class LLMSettings:
    provider: str = "anthropic"
    url: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class LoopConfig:
    user_goal: str = ""
    iterations: int = 1
    episodes: int = 1
    seeds: list = field(default_factory=list)
    success_threshold: float = 1.0
    existing_code: str | None = None
    policy_code: str | None = None
    llm: LLMSettings | None = None
    workers: int | None = None
    episode: EpisodeConfig = EpisodeConfig()


@dataclass
class LoopResult:
    best_iteration: int | None = None
    best_code: str | None = None
    best_aggregate: dict | None = None
    iterations: list = field(default_factory=list)
    concluded_early: bool = False
    stopped_reason: str = "iterations_done"
    sim_time_s: float = 0.0
    wall_time_s: float = 0.0


class FakeRenderer:
    """Sends frames to the renderer ports as voxelsim's RendererClient would."""

    def __init__(self, host: str, ports: tuple):
        self.sockets = {}
        world, agents, pov_world, pov_agents = ports
        for channel, port in (("world", world), ("agents", agents),
                              ("pov_world_0", pov_world), ("pov_agents_0", pov_agents)):
            self.sockets[channel] = socket.create_connection((host, port), timeout=2.0)

    def send(self, channel: str, payload: bytes) -> None:
        self.sockets[channel].sendall(encode_frame(payload))

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()


def run_loop(config: LoopConfig, run_dir: Path, emit: Callable[[dict], None],
             stop_event: threading.Event, *, llm_client=None) -> LoopResult:
    episode = config.episode
    result = LoopResult()
    renderer = None
    if episode.render:
        try:
            renderer = FakeRenderer(episode.render_host, tuple(episode.render_ports))
        except OSError as exc:
            emit({"type": "warning", "message": f"renderer not listening on {episode.render_host}:"
                                                f"{episode.render_ports[0]} ({exc}); continuing headless"})
    seeds = list(config.seeds) or list(range(config.episodes))
    try:
        for iteration in range(config.iterations):
            if stop_event.is_set():
                result.stopped_reason = "terminated"
                break
            emit({"type": "iteration", "iteration": iteration})
            code = config.policy_code or config.existing_code or TEMPLATE_POLICY
            if "FAKE_LOOP_FAIL" in code:
                raise ProviderError("provider failed after 3 attempts: HTTP 503 (scripted failure)")
            iter_dir = Path(run_dir) / f"iter_{iteration}"
            iter_dir.mkdir(parents=True, exist_ok=True)
            source = "given" if config.policy_code else "generated"
            (iter_dir / policy_file_name(source)).write_text(code, encoding="utf-8")
            emit({"type": "policy", "iteration": iteration, "source": source, "code": code})
            successes = 0
            for seed in seeds[: config.episodes] if config.episodes else []:
                summary = run_episode(episode, iteration, seed, emit, stop_event, renderer)
                successes += summary["success"]
                result.sim_time_s += summary["sim_time_s"]
                result.wall_time_s += summary["wall_time_s"]
            if stop_event.is_set():
                result.stopped_reason = "terminated"
                break
            count = config.episodes
            aggregate = {"episodes": count, "success_rate": successes / count if count else 0.0}
            critique = f"iteration {iteration}: {successes}/{count} episodes reached the target."
            (iter_dir / "aggregate.json").write_text(json.dumps(aggregate), encoding="utf-8")
            (iter_dir / "critique.txt").write_text(critique, encoding="utf-8")
            emit({"type": "critique", "iteration": iteration, "critique": critique, "aggregate": aggregate})
            result.iterations.append({"iteration": iteration, "aggregate": aggregate})
            if result.best_iteration is None or aggregate["success_rate"] >= result.best_aggregate["success_rate"]:
                result.best_iteration, result.best_code, result.best_aggregate = iteration, code, aggregate
            if count and aggregate["success_rate"] >= config.success_threshold:
                result.concluded_early = iteration + 1 < config.iterations
                result.stopped_reason = "success_threshold"
                break
    finally:
        if renderer is not None:
            renderer.close()
    return result


def run_episode(episode: EpisodeConfig, iteration: int, seed: int, emit, stop_event, renderer) -> dict:
    started = time.monotonic()
    target = episode.target or (60, 60, -20)
    steps = 0
    if renderer is not None:
        renderer.send("world", b"W" * 4096 + seed.to_bytes(4, "little"))
        renderer.send("pov_world_0", b"P" * 512)
    for i in range(episode.max_steps):
        if stop_event.is_set():
            break
        progress = (i + 1) / episode.max_steps
        pos = [50 + (target[0] - 50) * progress, 50 + (target[1] - 50) * progress, float(target[2])]
        emit({"type": "step", "iteration": iteration, "seed": seed, "step": i, "t": i * episode.delta,
              "agent_pos": pos, "agent_coord": [round(p) for p in pos], "yaw": 0.0, "command_len": 1,
              "collisions_count": 0, "distance_to_target": (1 - progress) * 14.1,
              "frame_time_ms": 0.01, "policy_log": {"note": "ok"}})
        if renderer is not None and i % 50 == 0:
            renderer.send("agents", b"A" * 256 + i.to_bytes(4, "little"))
        steps = i + 1
        if steps % STEPS_PER_PAUSE == 0:
            stop_event.wait(PAUSE_S)
    terminated = steps < episode.max_steps
    summary = {"type": "episode_summary", "iteration": iteration, "seed": seed,
               "success": not terminated, "steps": steps, "collisions_total": 0,
               "reason": "terminated" if terminated else "success",
               "sim_time_s": steps * episode.delta, "wall_time_s": time.monotonic() - started,
               "policy_summary": {"summary": f"steps={steps}"}}
    emit(summary)
    return summary

"""Everything a client sends, checked before it reaches a run: JSON bodies, query strings, WebSocket paths.

Each parser takes plain values (a decoded JSON object, a query string, a path) and returns a
typed value or raises ``BadRequest`` / ``NotFound`` with ``field`` set and a message of the
form ``"<field>: expects <what>, actual: <what came>"``. Nothing here touches a socket.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from bgen import defaults as _defaults
from bgen.errors import BadRequest, ConfigError, NotFound
from bgen.llm import client as _llm
from bgen.runner import taskspec as _taskspec
from bgen.runner.episode import MAX_COORD, MAX_DELTA_S, MIN_DELTA_S
from bgen.sim import scenarios as _scenarios

SCENARIOS = tuple(_scenarios.SCENARIOS)
# A request without a target gets its scenario's default target, so success is always defined.
DEFAULT_TARGETS = {name: tuple(entry.target) for name, entry in _scenarios.SCENARIOS.items()}
DEFAULT_PROVIDERS = _llm.PROVIDERS
# As the reference server: a provider's model when the request names none.
DEFAULT_MODELS = dict(_defaults.MODELS)

DEFAULT_GOAL = "Reach the target while minimizing collisions."
MAX_ITERATIONS = 50
MAX_EPISODES = 64
MAX_STEPS = 1_000_000
MAX_DURATION_S = 86_400.0
MAX_CODE_CHARS = 200_000
MAX_GOAL_CHARS = 8_000
MAX_TEXT_CHARS = 2_048
MAX_SEED = _defaults.MAX_SEED
MAX_CANDIDATES = 16
MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Request fields that would carry a credential. The server reads provider keys from its own
# environment; a key in a request is refused (never echoed, stored or logged).
SECRET_FIELD = re.compile(r"(api_?key|secret|token|password|authorization|credential)", re.I)

RUN_FIELDS = (
    "user_goal", "iterations", "episodes", "seeds", "render", "ws_proxy", "existing_code",
    "policy_code", "max_steps", "duration_seconds", "duration", "delta", "provider",
    "provider_url", "model", "pov_min_dt_world", "success_threshold", "px4", "use_px4",
    "target", "scenario", "candidates", "holdout_seeds", "llm_retries", "llm_backoff_cap_s", "max_tokens",
    "task_spec",
)


def redact_url(url: str | None) -> str | None:
    """``url`` without the user info and the query values it may carry (keys, passwords), for
    run.json, events and logs: ``http://***@host/path?api-key=***``."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = ("***@" if "@" in parts.netloc else "") + host + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "***"
    query = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class LLMDefaults:
    """The server's LLM defaults (``bgen_server.py --provider --provider-url --model``).

    A request naming no provider gets ``provider``; ``provider_url`` and ``model`` apply to a
    request whose provider is the server's and that names none itself.
    """

    provider: str = _llm.PROVIDERS[0]
    provider_url: str | None = None
    model: str | None = None

    def model_for(self, provider: str) -> str:
        if provider == self.provider and self.model:
            return self.model
        return DEFAULT_MODELS.get(provider, _llm.DEFAULT_MODEL)

    def url_for(self, provider: str) -> str | None:
        return self.provider_url if provider == self.provider else None


@dataclass(frozen=True)
class RunRequest:
    """A validated POST /run body, with every default filled in (this is what run.json keeps)."""

    user_goal: str
    iterations: int
    episodes: int
    seeds: tuple[int, ...]
    render: bool
    ws_proxy: bool
    existing_code: str | None
    policy_code: str | None
    max_steps: int
    delta: float
    provider: str
    provider_url: str | None
    model: str | None
    pov_min_dt_world: float
    success_threshold: float
    use_px4: bool
    target: tuple[float, float, float]
    scenario: str
    candidates: int = 1
    holdout_seeds: int = 0
    llm_retries: int | None = None          # None: the client's default (4)
    llm_backoff_cap_s: float | None = None  # None: the client's default (30 s)
    max_tokens: int | None = None           # None: the client's default (2400)
    task_spec: dict | None = None        # the checks episodes are judged by (None: from the goal)
    derive_max_steps: bool = False       # no max_steps/duration given: the spec's route decides
    send_key: bool = True                # False: the request chose provider_url; no key goes there

    def to_json(self) -> dict:
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        data["target"] = list(self.target)
        data["provider_url"] = redact_url(self.provider_url)
        return data


def show(value, limit: int = 60) -> str:
    """A short repr of what the client sent, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value) -> str:
    return {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)


def expect_int(body: dict, field: str, default, low: int, high: int) -> int:
    value = body.get(field, default)
    if type(value) is not int or not low <= value <= high:
        raise BadRequest(f"{field}: expects an integer in {low}..{high}, actual: {show(value)}",
                         field=field)
    return value


def expect_number(body: dict, field: str, default, low: float, high: float, *,
                  low_open: bool = False) -> float:
    value = body.get(field, default)
    ok = (type(value) in (int, float) and _taskspec.is_finite_number(value)
          and (value > low if low_open else value >= low) and value <= high)
    if not ok:
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise BadRequest(f"{field}: expects a number in {bounds}, actual: {show(value)}", field=field)
    return float(value)


def expect_bool(body: dict, field: str, default: bool) -> bool:
    value = body.get(field, default)
    if type(value) is not bool:
        raise BadRequest(f"{field}: expects true or false, actual: {show(value)}", field=field)
    return value


def expect_text(body: dict, field: str, limit: int) -> str | None:
    """An optional string; null and "" both mean absent (as in the reference)."""
    value = body.get(field)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise BadRequest(f"{field}: expects a string or null, actual: {type_name(value)}", field=field)
    if len(value) > limit:
        raise BadRequest(f"{field}: {len(value)} characters exceeds limit of {limit}", field=field)
    return value


def pick_alias(body: dict, names: tuple[str, str]) -> str:
    """The name used for a field that has two spellings; both present and different is an error."""
    first, second = names
    if first in body and second in body and body[first] != body[second]:
        raise BadRequest(f"{first}: disagrees with {second} ({show(body[first])} vs "
                         f"{show(body[second])}); send one of them", field=first)
    return first if first in body else second


def parse_seeds(body: dict) -> tuple[tuple[int, ...], int]:
    if "seeds" not in body or body["seeds"] is None:
        episodes = expect_int(body, "episodes", _defaults.value("episodes"), 0, MAX_EPISODES)
        return tuple(range(episodes)), episodes
    seeds = body["seeds"]
    if type(seeds) is not list or not 1 <= len(seeds) <= MAX_EPISODES:
        raise BadRequest(f"seeds: expects an array of 1..{MAX_EPISODES} integers, actual: {show(seeds)}",
                         field="seeds")
    for seed in seeds:
        if type(seed) is not int or not 0 <= seed <= MAX_SEED:
            raise BadRequest(f"seeds: expects integers in 0..{MAX_SEED}, actual: {show(seed)}",
                             field="seeds")
    if len(set(seeds)) != len(seeds):
        raise BadRequest(f"seeds: expects distinct seeds, actual: {show(seeds)}", field="seeds")
    episodes = expect_int(body, "episodes", len(seeds), 0, MAX_EPISODES)
    if episodes != len(seeds):
        raise BadRequest(f"episodes: expects the number of seeds ({len(seeds)}), actual: {episodes}",
                         field="episodes")
    return tuple(seeds), episodes


def parse_steps(body: dict) -> tuple[int, float]:
    """max_steps, delta. Without max_steps, ceil(duration_seconds / delta) steps of simulated
    time (duration_seconds defaults to 30, delta to 0.01), as the reference computes it."""
    delta = expect_number(body, "delta", _defaults.value("delta"), MIN_DELTA_S, MAX_DELTA_S)
    if body.get("max_steps") is not None:
        return expect_int(body, "max_steps", None, 1, MAX_STEPS), delta
    field = pick_alias(body, ("duration_seconds", "duration"))
    duration = expect_number(body, field, _defaults.DURATION_S, 0.0, MAX_DURATION_S, low_open=True)
    # The 1e-9 keeps 0.3 / 0.1 (= 2.9999999999999996) at 3 steps.
    steps = max(1, math.ceil(duration / delta - 1e-9))
    if steps > MAX_STEPS:
        raise BadRequest(f"{field}: {duration:g} s at delta {delta:g} is {steps} steps, "
                         f"exceeds limit of {MAX_STEPS}", field=field)
    return steps, delta


def parse_target(body: dict, scenario: str) -> tuple:
    value = body.get("target")
    if value is None:
        return DEFAULT_TARGETS[scenario]
    ok = (type(value) is list and len(value) == 3
          and all(type(v) in (int, float) and _taskspec.is_finite_number(v) and abs(v) <= MAX_COORD
                  for v in value))
    if not ok:
        raise BadRequest(f"target: expects [x, y, z] (3 numbers within +-{MAX_COORD:.0f}), "
                         f"actual: {show(value)}", field="target")
    return tuple(value)


def parse_task_spec(body: dict, scenario: str) -> dict | None:
    """The ``task_spec`` field, validated (``bgen.runner.taskspec``), defaults filled in; a 400
    naming the offending part, e.g. field ``task_spec.checks[1].radius``."""
    value = body.get("task_spec")
    if value is None:
        return None
    if type(value) is not dict:
        raise BadRequest(f"task_spec: expects an object with 'checks', actual: {type_name(value)}",
                         field="task_spec")
    spec = _taskspec.parse_task_spec(value, prefix="task_spec")
    names = set(_scenarios.scenario_landmarks(scenario)) | {"start", "target"}
    _taskspec.check_landmarks(spec, names, prefix="task_spec")
    return spec.to_dict()


def parse_run_request(body, *, default_ws_proxy: bool = True,
                      providers: tuple[str, ...] = DEFAULT_PROVIDERS,
                      llm_defaults: LLMDefaults | None = None) -> RunRequest:
    """Validate a decoded POST /run body against the reference's fields plus target/scenario/seeds
    and the LLM retry/limit fields; ``llm_defaults`` fill provider, URL and model (see LLMDefaults)."""
    llm_defaults = llm_defaults or LLMDefaults(provider=providers[0])
    if type(body) is not dict:
        raise BadRequest(f"request body: expects a JSON object, actual: {type_name(body)}")
    for name in body:
        if name not in RUN_FIELDS and SECRET_FIELD.search(name):
            raise BadRequest(f"{show(name, 40)}: credentials are not accepted in requests; the server "
                             "reads provider keys from its own environment", field=name[:64])
        if name not in RUN_FIELDS:
            raise BadRequest(f"{show(name, 40)}: unknown field; expects one of {', '.join(RUN_FIELDS)}",
                             field=name[:64])

    user_goal = expect_text(body, "user_goal", MAX_GOAL_CHARS) or DEFAULT_GOAL
    scenario = body.get("scenario", "terrain")
    if scenario not in SCENARIOS:
        raise BadRequest(f"scenario: expects one of {', '.join(SCENARIOS)}, actual: {show(scenario)}",
                         field="scenario")
    provider = body.get("provider", llm_defaults.provider)
    if type(provider) is not str or provider.lower() not in providers:
        raise BadRequest(f"provider: expects one of {', '.join(providers)}, actual: {show(provider)}",
                         field="provider")
    server_url = llm_defaults.url_for(provider.lower())
    provider_url = expect_text(body, "provider_url", MAX_TEXT_CHARS) or server_url
    if provider_url is not None:
        try:
            _llm.endpoint_url("openai", provider_url)
        except ConfigError:
            wanted, shown = "an http:// or https:// URL", provider_url
            if "@" in provider_url:       # user info is not sent, and is not echoed either
                wanted = "no user info (user:password@): the key goes in a header"
                shown = redact_url(provider_url)
            raise BadRequest(f"provider_url: expects {wanted}, actual: {show(shown)}",
                             field="provider_url") from None
    # The server's key goes only where the server's own settings point (its --provider-url, or
    # the provider's default gateway): a URL the request chose gets no key (a local model
    # server needs none), so no request can collect it.
    send_key = provider_url is None or provider_url in (server_url,
                                                        _llm.DEFAULT_URLS.get(provider.lower()))
    seeds, episodes = parse_seeds(body)
    max_steps, delta = parse_steps(body)
    task_spec = parse_task_spec(body, scenario)
    policy_code = expect_text(body, "policy_code", MAX_CODE_CHARS)
    steps_given = any(body.get(name) is not None for name in ("max_steps", "duration_seconds",
                                                               "duration"))
    px4_field = pick_alias(body, ("px4", "use_px4"))
    return RunRequest(
        user_goal=user_goal,
        iterations=expect_int(body, "iterations", _defaults.value("iterations"), 1, MAX_ITERATIONS),
        episodes=episodes,
        seeds=seeds,
        render=expect_bool(body, "render", True),
        ws_proxy=expect_bool(body, "ws_proxy", default_ws_proxy),
        existing_code=expect_text(body, "existing_code", MAX_CODE_CHARS),
        policy_code=policy_code,
        max_steps=max_steps,
        delta=delta,
        provider=provider.lower(),
        provider_url=provider_url, send_key=send_key,
        model=expect_text(body, "model", 200) or llm_defaults.model_for(provider.lower()),
        pov_min_dt_world=expect_number(body, "pov_min_dt_world", 0.05, 0.0, 60.0),
        success_threshold=expect_number(body, "success_threshold", _defaults.value("success_threshold"), 0.0, 1.0),
        use_px4=expect_bool(body, px4_field, True),
        target=parse_target(body, scenario),
        scenario=scenario,
        candidates=expect_int(body, "candidates", 1, 1, MAX_CANDIDATES),
        holdout_seeds=expect_int(body, "holdout_seeds", 0, 0, MAX_EPISODES),
        llm_retries=optional(body, "llm_retries", lambda: expect_int(
            body, "llm_retries", None, 0, _llm.MAX_RETRIES_LIMIT)),
        llm_backoff_cap_s=optional(body, "llm_backoff_cap_s", lambda: expect_number(
            body, "llm_backoff_cap_s", None, 0.0, _llm.MAX_BACKOFF_CAP_S, low_open=True)),
        max_tokens=optional(body, "max_tokens", lambda: expect_int(body, "max_tokens", None, 1, 200_000)),
        task_spec=task_spec,
        derive_max_steps=not steps_given and (task_spec is not None or policy_code is None),
    )


def optional(body: dict, field: str, parse):
    """``parse()`` when the field is present and not null, else None."""
    return None if body.get(field) is None else parse()


# ---------------------------------------------------------------- query strings and paths

def check_run_id(run_id: str) -> str:
    """Run ids name directories: anything else is a 404, never a path."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise NotFound(f"no run {show(run_id, 40)}", field="run_id")
    return run_id


def query_params(query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """Each parameter's value; an unknown parameter (a typo is not ignored) or one given twice
    (which of the two was meant?) is a 400."""
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except ValueError as exc:
        raise BadRequest(f"query string: {exc}") from None
    for name in parsed:
        if name not in allowed:
            expected = ", ".join(allowed) if allowed else "no parameters"
            raise BadRequest(f"{show(name, 40)}: unknown query parameter; expects {expected}",
                             field=name[:64])
    for name, values in parsed.items():
        if len(values) > 1:
            raise BadRequest(f"{name}: given {len(values)} times in the query; give it once",
                             field=name)
    return {name: values[0] for name, values in parsed.items()}


def query_int(params: dict, field: str, low: int, high: int) -> int | None:
    if field not in params:
        return None
    text = params[field]
    if not re.fullmatch(r"\d{1,12}", text) or not low <= int(text) <= high:
        raise BadRequest(f"{field}: expects an integer in {low}..{high}, actual: {show(text)}", field=field)
    return int(text)


def query_flag(params: dict, field: str) -> bool:
    text = params.get(field, "0").lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise BadRequest(f"{field}: expects 1 or 0 (or true/false, yes/no), actual: "
                     f"{show(params[field])}", field=field)


def parse_code_query(query: str) -> tuple[int | None, bool]:
    """GET /code/<id>?iteration=N | ?best=1 -> (iteration, best)."""
    params = query_params(query, ("iteration", "best"))
    iteration = query_int(params, "iteration", 0, MAX_ITERATIONS * 1000)
    best = query_flag(params, "best")
    if best and iteration is not None:
        raise BadRequest("best: expects either iteration or best, not both", field="best")
    return iteration, best


def parse_list_query(query: str, states: tuple[str, ...]) -> tuple[int, int, tuple[str, ...] | None]:
    """GET /runs?limit=N&offset=M&status=a,b -> (limit, offset, statuses or None)."""
    params = query_params(query, ("limit", "offset", "status"))
    limit = query_int(params, "limit", 1, MAX_LIST_LIMIT)
    offset = query_int(params, "offset", 0, 10**9)
    statuses = None
    if "status" in params:
        statuses = tuple(part for part in params["status"].split(",") if part)
        unknown = [part for part in statuses if part not in states]
        if unknown or not statuses:
            raise BadRequest(f"status: expects one or more of {', '.join(states)} (comma-separated), "
                             f"actual: {show(params['status'])}", field="status")
    return (DEFAULT_LIST_LIMIT if limit is None else limit), (offset or 0), statuses


RENDER_CHANNEL = re.compile(r"world|agents|pov_world_\d{1,3}|pov_agents_\d{1,3}")
# base64: the reference's envelope (payload_b64), the default; binary: [u32 LE length][payload]
# as one binary message; json: the frame decoded (bgen_server.decoded_frame_message).
RENDER_FORMATS = ("base64", "binary", "json")
DEFAULT_RENDER_FORMAT = "base64"


@dataclass(frozen=True)
class WsTarget:
    """What a WebSocket connection subscribes to."""

    kind: str                    # "progress" | "render"
    run_id: str
    channel: str | None = None   # render only
    since: int | None = None     # progress only: replay events after this id
    format: str = DEFAULT_RENDER_FORMAT   # render only: one of RENDER_FORMATS

    @property
    def topic(self) -> str:
        if self.kind == "progress":
            return f"progress:{self.run_id}"
        return f"render:{self.run_id}:{self.channel}"


def parse_ws_path(path: str) -> WsTarget | None:
    """``/ws/progress/<id>[?since=N]`` or ``/ws/render/<id>/<channel>[?format=base64|binary|json]``.

    Any other path returns None: the client is expected to send a subscribe message.
    """
    parts = urlsplit(path)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) == 3 and segments[:2] == ["ws", "progress"]:
        params = query_params(parts.query, ("since", "token"))
        return WsTarget("progress", check_run_id(segments[2]),
                        since=query_int(params, "since", 0, 2**53))
    if len(segments) == 4 and segments[:2] == ["ws", "render"]:
        params = query_params(parts.query, ("format", "token"))
        fmt = params.get("format", DEFAULT_RENDER_FORMAT)
        if fmt not in RENDER_FORMATS:
            raise BadRequest(f"format: expects one of {', '.join(RENDER_FORMATS)}, actual: {show(fmt)}",
                             field="format")
        return WsTarget("render", check_run_id(segments[2]), channel=check_channel(segments[3]),
                        format=fmt)   # ?token= is checked (and dropped) at the handshake
    if segments[:1] == ["ws"] and len(segments) > 1:
        raise NotFound(f"no WebSocket route {show(parts.path)}; expects /ws/progress/<run_id> "
                       "or /ws/render/<run_id>/<channel>")
    return None


def check_channel(channel: str) -> str:
    if not RENDER_CHANNEL.fullmatch(channel):
        raise NotFound(f"channel: expects world, agents, pov_world_<i> or pov_agents_<i>, "
                       f"actual: {show(channel)}", field="channel")
    return channel


def parse_subscribe(message) -> WsTarget:
    """The reference's fallback: ``{"type": "subscribe", "topic": "progress:<id>"}``
    (or ``"render:<id>:<channel>"``)."""
    if type(message) is not dict or message.get("type") != "subscribe":
        raise BadRequest('expects {"type": "subscribe", "topic": "progress:<run_id>"}, '
                         f"actual: {show(message)}", field="type")
    topic = message.get("topic")
    if type(topic) is not str:
        raise BadRequest(f"topic: expects a string, actual: {show(topic)}", field="topic")
    kind, _, rest = topic.partition(":")
    if kind == "progress":
        return WsTarget("progress", check_run_id(rest))
    if kind == "render":
        run_id, _, channel = rest.partition(":")
        return WsTarget("render", check_run_id(run_id), channel=check_channel(channel))
    raise BadRequest(f"topic: expects progress:<run_id> or render:<run_id>:<channel>, "
                     f"actual: {show(topic)}", field="topic")

"""Finding the policy module in an LLM's reply text (pure: no I/O, no provider knowledge).

    reply text ─► normalise newlines ─► strip reasoning sections ─► fenced blocks ─► choose one
                                              │ nothing usable                          │ no fence
                                              └─► the same search in the unstripped text └─► the text that compiles

Reasoning sections are ``<think>…</think>``, ``<thinking>…</thinking>`` and
``<reasoning>…</reasoning>`` (any case); a closing tag with no opening one (servers that put
the opening tag in the chat template send that) drops everything before it, and an opening tag
never closed (a reply cut inside its reasoning) drops everything after it.

Fenced blocks follow CommonMark's fences: three or more backticks or tildes, an info string
whose first word is the language. Blocks tagged ``python``, ``py``, ``python3`` (any case) or
untagged are candidates; others (``json``, ``bash`` …) are not. A fence indented under a list
item is dedented by its own indentation, and a block ends only at a closing fence of the same
character, at least as long, with the same or less indentation — or at the end of the text (a
reply cut off by the token limit).

A block is *usable* when it compiles (``ast.parse``) and defines ``act`` at module level. The
chosen block is the last that compiles and defines all of ``act``, ``collect`` and ``finalize``
(the contract ``bgen.runner.sandbox.check_contract`` enforces), else the last that compiles and
defines ``act``, else the longest. With no candidate fence, the text is taken from its first
line of code, without trailing prose, when that compiles; otherwise the whole text.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# The policy contract (bgen.runner.sandbox.CONTRACT_SIGNATURES): act, collect and finalize are
# required, init is optional.
REQUIRED_FUNCTIONS = ("act", "collect", "finalize")
PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})
REASONING_TAGS = ("think", "thinking", "reasoning")

_TAGS = "|".join(REASONING_TAGS)
_SECTION = re.compile(rf"<({_TAGS})\s*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_CLOSING = re.compile(rf"</(?:{_TAGS})\s*>", re.IGNORECASE)
_OPENING = re.compile(rf"<(?:{_TAGS})\s*>", re.IGNORECASE)
_OPEN_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")
_TAG = re.compile(r"[A-Za-z0-9_+.-]*")
# A line that can start a module: import, def, class, decorator, comment, assignment, docstring.
_CODE_START = re.compile(r"^(import\s|from\s+\S+\s+import\s|def\s|class\s|async\s+def\s|@|#|"
                         r"[A-Za-z_][\w.\[\], ]*\s*[-+*/]?=|\"\"\"|''')")


@dataclass(frozen=True)
class Block:
    """One fenced block: its code (dedented), language tag, whether its closing fence came."""

    code: str
    tag: str
    closed: bool
    line: int           # 1-based line of the opening fence in the text searched


@dataclass(frozen=True)
class Extraction:
    """The code taken from a reply and why.

    ``source``: ``"fence"`` (a fenced block), ``"text"`` (no fence; the text that compiles or the
    whole text). ``block`` is the 1-based number of the chosen block among ``blocks`` candidate
    blocks (None for text). ``usable``: compiles and defines ``act``. ``from_reasoning``: the code
    came from inside a reasoning section because nothing outside it was usable.
    """

    code: str
    source: str
    reason: str
    blocks: int = 0
    block: int | None = None
    usable: bool = False
    complete: bool = False          # usable and defines act, collect and finalize
    closed: bool = True             # the chosen fence was closed (False: cut off)
    reasoning_stripped: bool = False
    from_reasoning: bool = False

    def note(self) -> str | None:
        """A sentence for the LLM saying which block was taken, when there was a choice."""
        if self.source != "fence" or self.blocks < 2:
            return None
        where = " (inside the reasoning section)" if self.from_reasoning else ""
        return (f"Your reply had {self.blocks} Python code blocks; block {self.block} of "
                f"{self.blocks}{where} was taken as the module ({self.reason}). Reply with "
                "exactly one ```python block holding the complete module.")


# --- the steps ---------------------------------------------------------------------------------

def strip_reasoning(text: str) -> str:
    """The text without reasoning sections (see the module docstring)."""
    text = _SECTION.sub("", text)
    closing = list(_CLOSING.finditer(text))
    if closing:
        text = text[closing[-1].end():]
    opening = _OPENING.search(text)
    if opening:
        text = text[:opening.start()]
    return text


def _width(indent: str) -> int:
    return len(indent.expandtabs(4))


def _dedent_line(line: str, width: int) -> str:
    """``line`` without up to ``width`` columns of leading whitespace."""
    column, cut = 0, 0
    while cut < len(line) and column < width and line[cut] in " \t":
        column = (column // 4 + 1) * 4 if line[cut] == "\t" else column + 1
        cut += 1
    return line[cut:]


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text`` in order (any language), dedented by its fence's indent."""
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _OPEN_FENCE.match(lines[i])
        info = opening.group("info") if opening else ""
        if not opening or (opening.group("fence")[0] == "`" and "`" in info):
            i += 1
            continue
        indent = _width(opening.group("indent"))
        fence = opening.group("fence")
        tag = _TAG.match(info.strip()).group(0).lower()
        closer = re.compile(rf"^(?P<indent>[ \t]*){re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body, closed, j = [], False, i + 1
        while j < len(lines):
            end = closer.match(lines[j])
            if end and _width(end.group("indent")) <= indent:
                closed = True
                break
            body.append(_dedent_line(lines[j], indent))
            j += 1
        blocks.append(Block(code="\n".join(body), tag=tag, closed=closed, line=i + 1))
        i = j + 1
    return blocks


def defined_functions(code: str) -> set[str] | None:
    """Names of the module-level functions ``code`` defines; None when it does not compile."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _finish(code: str) -> str:
    return code.strip("\n").rstrip() + "\n" if code.strip() else ""


def _assess(code: str) -> tuple[bool, bool]:
    """(usable, complete) of a candidate module."""
    names = defined_functions(code)
    if names is None or "act" not in names:
        return False, False
    return True, all(name in names for name in REQUIRED_FUNCTIONS)


def choose_block(blocks: list[Block]) -> tuple[int, str]:
    """(index into ``blocks``, reason) of the block to take; ``blocks`` is non-empty."""
    assessed = [_assess(block.code) for block in blocks]
    complete = [i for i, (_, full) in enumerate(assessed) if full]
    if complete:
        if len(blocks) == 1:
            return 0, "the only block"
        return complete[-1], "the last block that compiles and defines act, collect and finalize"
    usable = [i for i, (ok, _) in enumerate(assessed) if ok]
    if usable:
        return usable[-1], "the last block that compiles and defines act"
    longest = max(range(len(blocks)), key=lambda i: (len(blocks[i].code.strip()), i))
    return longest, "the longest block; none compiles and defines act"


def _code_in_text(text: str) -> tuple[str, bool]:
    """(code, found) from unfenced text: the whole text, or from a first line of code on,
    without trailing prose, when that compiles."""
    whole = _finish(text)
    if defined_functions(whole) is not None:
        return whole, True
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)][:40]
    for start in starts:
        tail = lines[start:]
        candidates = ["\n".join(tail)]
        # Trailing prose: cut after the last line that is indented or looks like code.
        last = max((k for k, line in enumerate(tail) if line[:1] in (" ", "\t") or _CODE_START.match(line)),
                   default=None)
        if last is not None and last + 1 < len(tail):
            candidates.append("\n".join(tail[:last + 1]))
        for candidate in candidates:
            if defined_functions(candidate) is not None:
                return _finish(candidate), True
    return whole, False


def _search(text: str) -> Extraction:
    blocks = [b for b in fenced_blocks(text) if b.tag in PYTHON_TAGS]
    if blocks:
        index, reason = choose_block(blocks)
        chosen = blocks[index]
        code = _finish(chosen.code)
        usable, complete = _assess(code)
        return Extraction(code=code, source="fence", reason=reason, blocks=len(blocks),
                          block=index + 1, usable=usable, complete=complete, closed=chosen.closed)
    code, compiles = _code_in_text(text)
    usable, complete = _assess(code)
    reason = "no fenced block; the text that compiles" if compiles else \
        "no fenced block and no text that compiles; the whole text"
    return Extraction(code=code, source="text", reason=reason, usable=usable, complete=complete)


def extract(text: str) -> Extraction:
    """The policy module in a reply (see the module docstring for the rules)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    stripped = strip_reasoning(text)
    if stripped == text:
        return _search(text)
    outside = _search(stripped)
    outside = Extraction(**{**outside.__dict__, "reasoning_stripped": True})
    if outside.usable:
        return outside
    inside = _search(text)
    if inside.usable:
        return Extraction(**{**inside.__dict__, "reasoning_stripped": True, "from_reasoning": True})
    return outside if outside.code else inside


def extract_code(text: str) -> str:
    """The code of ``extract(text)``."""
    return extract(text).code

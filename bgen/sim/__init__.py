"""The simulator seam: everything in bgen reaches voxelsim through ``load_backend()``.

Two backends expose the same Python API (class names, method names, argument order,
return types, failure behaviour):

* ``"voxelsim"`` — the real module (Rust + PyO3, built from Merlotec/vxs with maturin);
* ``"embedded"`` — ``bgen.sim.embedded``, our Python + numpy implementation;
* ``"auto"`` (default) — the real one when importable, else the embedded one.

``BGEN_SIM_BACKEND`` chooses when no name is passed.
"""

from __future__ import annotations

import importlib
import os
import types

from bgen.errors import ConfigError

BACKEND_NAMES = ("auto", "voxelsim", "embedded")
ENV_VAR = "BGEN_SIM_BACKEND"

INSTALL_HINT = (
    "the 'voxelsim' backend needs the voxelsim Python module, which is built from the Rust "
    "sources of Merlotec/vxs: install a Rust toolchain and maturin, then run "
    "'maturin develop --release' in voxelsim-py/ (or pip install the wheel it builds); "
    "or use BGEN_SIM_BACKEND=embedded"
)


def requested_backend_name(name: str | None = None) -> str:
    """The backend asked for: the argument, else ``$BGEN_SIM_BACKEND``, else ``"auto"``."""
    chosen = name if name is not None else os.environ.get(ENV_VAR, "") or "auto"
    chosen = chosen.strip().lower()
    if chosen not in BACKEND_NAMES:
        raise ConfigError(
            f"simulator backend: expects one of {', '.join(BACKEND_NAMES)}, actual: {chosen!r}",
            field="backend",
        )
    return chosen


def _import_real() -> types.ModuleType | None:
    try:
        module = importlib.import_module("voxelsim")
    except ImportError:
        return None
    # A stray directory named voxelsim (namespace package) is not the simulator.
    return module if hasattr(module, "VoxelGrid") else None


def load_backend(name: str | None = None) -> types.ModuleType:
    """Return the module object exposing the voxelsim API for ``name`` (see module docstring)."""
    chosen = requested_backend_name(name)
    if chosen in ("auto", "voxelsim"):
        real = _import_real()
        if real is not None:
            return real
        if chosen == "voxelsim":
            raise ConfigError(f"voxelsim is not importable; {INSTALL_HINT}", field="backend")
    from bgen.sim import embedded

    return embedded


def backend_label(module: types.ModuleType) -> str:
    """``"embedded"`` or ``"voxelsim"``, for logs, /health and run records."""
    return "embedded" if module.__name__.startswith("bgen.sim.embedded") else "voxelsim"

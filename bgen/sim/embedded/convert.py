"""Argument conversion that behaves like PyO3's, so policies fail here as they fail on voxelsim.

PyO3 (0.25, the version voxelsim builds with) extracts Rust arguments like this, and so do we:

* integers (``i32``, ``u32``, ``u16``, ``usize``) go through ``__index__``: Python ints, bools and
  numpy integers pass; a float, even ``1.0`` or a numpy float, is a ``TypeError``
  ("'float' object cannot be interpreted as an integer"); out of range is an ``OverflowError``;
* ``f64`` goes through ``__float__``/``__index__``: ints and floats pass, ``str`` and ``None`` fail;
* ``[T; N]`` takes any object passing ``PySequence_Check`` (list, tuple, numpy array, str…) of
  exactly N items: "expected a sequence of length 3 (got 2)" is a ``ValueError``;
* ``Vec<T>`` takes the same sequences but refuses ``str`` ("Can't extract `str` to `Vec`");
* a ``#[pyclass]`` argument must be an instance of that class
  ("'int' object cannot be converted to 'MoveDir'").

A ``TypeError`` raised while extracting an argument is re-raised as
``TypeError("argument '<name>': <message>")``, exactly as PyO3 does; other errors pass unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

_INT_RANGES = {
    "i32": (-(2**31), 2**31 - 1),
    "u32": (0, 2**32 - 1),
    "u16": (0, 2**16 - 1),
    "u8": (0, 2**8 - 1),
    "usize": (0, 2**64 - 1),
    "i64": (-(2**63), 2**63 - 1),
}


def _type_name(value) -> str:
    return type(value).__name__ if type(value).__module__ == "builtins" else (
        f"{type(value).__module__.split('.')[0]}.{type(value).__name__}"
        if type(value).__module__ == "numpy" else type(value).__name__)


def _argument_error(arg: str | None, error: Exception) -> Exception:
    if arg is not None and type(error) is TypeError:
        return TypeError(f"argument '{arg}': {error}")
    return error


def _int(value, kind: str) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"'{_type_name(value)}' object cannot be interpreted as an integer") from None
    low, high = _INT_RANGES[kind]
    if number < low or number > high:
        if number < 0 and low == 0:
            raise OverflowError("can't convert negative int to unsigned")
        raise OverflowError("out of range integral type conversion attempted")
    return number


def _float(value) -> float:
    if isinstance(value, float):
        return float(value)
    try:
        return float(operator.index(value))
    except TypeError:
        pass
    to_float = getattr(type(value), "__float__", None)
    if to_float is None or isinstance(value, (str, bytes)):
        raise TypeError(f"must be real number, not {_type_name(value)}")
    return float(to_float(value))


def _is_sequence(value) -> bool:
    """Approximates ``PySequence_Check``: has item access and is not a mapping."""
    if isinstance(value, (Mapping, set, frozenset)):
        return False
    return hasattr(type(value), "__getitem__") and hasattr(type(value), "__len__")


def _sequence(value, *, allow_str: bool) -> list:
    if not allow_str and isinstance(value, str):
        raise TypeError("Can't extract `str` to `Vec`")
    if not _is_sequence(value):
        raise TypeError(f"'{_type_name(value)}' object cannot be converted to 'Sequence'")
    return [value[i] for i in range(len(value))]


def to_int(value, arg: str | None = None, kind: str = "i32") -> int:
    """Extract an integer argument of Rust type ``kind`` (i32, u32, u16, u8, usize, i64)."""
    try:
        return _int(value, kind)
    except (TypeError, OverflowError) as error:
        raise _argument_error(arg, error) from None


def to_float(value, arg: str | None = None) -> float:
    """Extract an ``f64`` argument."""
    try:
        return _float(value)
    except TypeError as error:
        raise _argument_error(arg, error) from None


def to_int_array(value, length: int, arg: str | None = None, kind: str = "i32") -> tuple:
    """Extract ``[i32; length]`` (a coordinate when length is 3) as a tuple of ints."""
    try:
        items = _sequence(value, allow_str=True)
        if len(items) != length:
            raise ValueError(f"expected a sequence of length {length} (got {len(items)})")
        return tuple(_int(item, kind) for item in items)
    except (TypeError, OverflowError) as error:
        raise _argument_error(arg, error) from None


def to_coord(value, arg: str | None = None) -> tuple[int, int, int]:
    """Extract a voxel coordinate (``[i32; 3]``)."""
    return to_int_array(value, 3, arg, "i32")


def to_float_array(value, length: int, arg: str | None = None) -> tuple:
    """Extract ``[f64; length]`` as a tuple of floats."""
    try:
        items = _sequence(value, allow_str=True)
        if len(items) != length:
            raise ValueError(f"expected a sequence of length {length} (got {len(items)})")
        return tuple(_float(item) for item in items)
    except TypeError as error:
        raise _argument_error(arg, error) from None


def to_instance(value, cls: type, arg: str | None = None):
    """Extract a ``#[pyclass]`` argument: it must be an instance of ``cls``."""
    if isinstance(value, cls):
        return value
    raise _argument_error(arg, TypeError(
        f"'{_type_name(value)}' object cannot be converted to '{cls.__name__}'"))


def to_list_of(value, cls: type, arg: str | None = None) -> list:
    """Extract ``Vec<Cls>`` from a non-str sequence of ``cls`` instances."""
    try:
        items = _sequence(value, allow_str=False)
    except TypeError as error:
        raise _argument_error(arg, error) from None
    return [to_instance(item, cls, arg) for item in items]


def to_optional(value, convert, *args, **kwargs):
    """Extract ``Option<T>``: ``None`` stays ``None``, anything else goes through ``convert``."""
    return None if value is None else convert(value, *args, **kwargs)


def to_dict(value, arg: str | None = None) -> dict:
    """Extract a ``HashMap`` argument: it must be a dict."""
    if isinstance(value, dict):
        return value
    raise _argument_error(arg, TypeError(
        f"'{_type_name(value)}' object cannot be converted to 'PyDict'"))


class PanicException(BaseException):
    """What a Rust panic becomes in Python (``pyo3_runtime.PanicException``).

    It derives from ``BaseException``, so ``except Exception`` does not catch it — as on voxelsim.
    """


PanicException.__module__ = "pyo3_runtime"


class SealedType(type):
    """Metaclass that makes a class immutable, like a PyO3 ``#[pyclass]`` type.

    voxelsim's classes are immutable types: ``vxs.Agent.get_pos = fake`` raises ``TypeError``.
    Ours must refuse too, or a policy could patch the backend the runner measures it with.
    Names starting with ``_`` stay writable for the backend's own bookkeeping; policy code
    cannot spell them (the sandbox rejects every ``_`` identifier).
    """

    def __setattr__(cls, name, value):
        if not name.startswith("_"):
            raise TypeError(f"cannot set '{name}' attribute of immutable type '{cls.__name__}'")
        super().__setattr__(name, value)

    def __delattr__(cls, name):
        if not name.startswith("_"):
            raise TypeError(f"cannot delete '{name}' attribute of immutable type '{cls.__name__}'")
        super().__delattr__(name)


class Sealed(metaclass=SealedType):
    """Base of every exported backend class: an immutable type, as PyO3 classes are.

    Most subclasses declare ``__slots__`` of ``_`` names, so their instances already refuse
    public attributes (properties with setters, like PyO3's ``set_all`` fields, still work).
    """

    __slots__ = ()


def _settable(cls: type, name: str) -> bool:
    attr = getattr(cls, name, None)
    return isinstance(attr, property) and attr.fset is not None


class SealedInstances(Sealed):
    """For the few backend classes without ``__slots__``: refuse public instance attributes.

    Kept off the slotted classes on purpose: a Python ``__setattr__`` would tax every internal
    assignment in the simulation's hot path.
    """

    __slots__ = ()

    def __setattr__(self, name, value):
        if name.startswith("_") or _settable(type(self), name):
            object.__setattr__(self, name, value)
        elif hasattr(type(self), name):
            raise AttributeError(f"'{type(self).__name__}' object attribute '{name}' is read-only")
        else:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if not name.startswith("_"):
            raise AttributeError(f"'{type(self).__name__}' object attribute '{name}' is read-only")
        object.__delattr__(self, name)

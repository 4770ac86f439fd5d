"""Where a batch's items come from: grids, seeded random samplers, lists of dicts, tables.

Every source answers one question, ``item(i)``: the parameters (and MIDI) of item ``i``, computed
from ``i`` alone. A random sampler draws item ``i`` from a numpy Generator seeded with
``(seed, i)``, so item 1234 is the same whether it is rendered first, last, alone, on another
worker or in another run; nothing depends on the order items are drawn or rendered in.

Reserved names (not graph parameters): ``note``, ``velocity``, ``duration`` (a MIDI note played
from the first sample, released after ``duration`` seconds) and ``midi`` (a MIDI file path, or a
list of ``(seconds, status, data1, data2)`` events). Every other name is a parameter, see
:mod:`oscen.batch.plan` for how it finds its value inputs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

RESERVED = ("note", "velocity", "duration", "midi")


class ParamError(ValueError):
    """A parameter space, table or value that cannot be used; the message says which and why."""


# ---------------------------------------------------------------------------- items


@dataclass
class Item:
    """One sound to render: its index, parameter values and optional MIDI."""

    index: int
    params: dict[str, float] = field(default_factory=dict)
    note: int | None = None
    velocity: int = 100
    duration: float | None = None  # seconds the note is held; None: to the end of the render
    midi: Any = None  # a MIDI file path or a list of (seconds, status, data1, data2)

    def columns(self) -> dict[str, Any]:
        """The item's metadata columns (reserved ones only when used)."""
        row: dict[str, Any] = dict(self.params)
        if self.note is not None:
            row["note"] = self.note
            row["velocity"] = self.velocity
            row["duration"] = self.duration
        if isinstance(self.midi, (str, Path)):
            row["midi"] = str(self.midi)
        return row


def make_item(index: int, values: Mapping[str, Any], where: str) -> Item:
    """An Item from one dict of values; reserved names become its MIDI fields."""
    params: dict[str, float] = {}
    item = Item(index)
    for name, value in values.items():
        if not isinstance(name, str):
            raise ParamError(f"{where}: parameter names must be strings, got {name!r}")
        if name == "note":
            item.note = _midi_number(value, 0, 127, f"{where}: note")
        elif name == "velocity":
            item.velocity = _midi_number(value, 1, 127, f"{where}: velocity")
        elif name == "duration":
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                item.duration = _number(value, f"{where}: duration")
                if item.duration < 0:
                    raise ParamError(f"{where}: duration must be >= 0 seconds, got {value!r}")
        elif name == "midi":
            item.midi = value
        else:
            params[name] = _number(value, f"{where}: {name}")
    item.params = params
    return item


def _number(value: Any, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParamError(f"{where} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParamError(f"{where} must be finite, got {value!r}")
    return value


def _midi_number(value: Any, lo: int, hi: int, where: str) -> int:
    number = _number(value, where)
    if number != int(number) or not lo <= number <= hi:
        raise ParamError(f"{where} must be a whole number in {lo}..{hi}, got {value!r}")
    return int(number)


class ItemSource(Protocol):
    """What render_batch takes: how many items, and item ``i`` from ``i`` alone."""

    def __len__(self) -> int: ...

    def item(self, index: int) -> Item: ...


# ---------------------------------------------------------------------------- distributions


class Distribution:
    """One parameter's distribution for :class:`RandomSpace`."""

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def to_json(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, "uniform")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def to_json(self) -> Any:
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True)
class LogUniform(Distribution):
    """Uniform in log space: as likely to fall in 100..200 Hz as in 1000..2000 Hz."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, "log_uniform")
        if self.low <= 0:
            raise ParamError(f"log_uniform needs low > 0, got [{self.low}, {self.high}]")

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def to_json(self) -> Any:
        return {"log_uniform": [self.low, self.high]}


@dataclass(frozen=True)
class IntUniform(Distribution):
    """A whole number in low..high, both included (MIDI notes, velocities)."""

    low: int
    high: int

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, "int")
        if int(self.low) != self.low or int(self.high) != self.high:
            raise ParamError(f"int needs whole bounds, got [{self.low}, {self.high}]")

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(int(self.low), int(self.high) + 1))

    def to_json(self) -> Any:
        return {"int": [self.low, self.high]}


@dataclass(frozen=True)
class Choice(Distribution):
    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        values = tuple(values)
        if not values:
            raise ParamError("choice needs at least one value")
        object.__setattr__(self, "values", values)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def to_json(self) -> Any:
        return {"choice": list(self.values)}


@dataclass(frozen=True)
class Fixed(Distribution):
    value: Any

    def sample(self, rng: np.random.Generator) -> Any:
        return self.value

    def to_json(self) -> Any:
        return self.value


def _check_range(low: Any, high: Any, kind: str) -> None:
    for v in (low, high):
        _number(v, f"{kind} bound")
    if not low <= high:
        raise ParamError(f"{kind} needs low <= high, got [{low}, {high}]")


DISTRIBUTIONS = {"uniform": Uniform, "log_uniform": LogUniform, "int": IntUniform}


def distribution(spec: Any, where: str = "parameter") -> Distribution:
    """A Distribution from its JSON form: ``{"uniform": [lo, hi]}``, ``{"log_uniform": [lo, hi]}``,
    ``{"int": [lo, hi]}``, ``{"choice": [a, b, ...]}``, or a plain value (always that value)."""
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, Mapping):
        if len(spec) != 1:
            raise ParamError(f"{where}: a distribution is one of {_KINDS}, got {dict(spec)!r}")
        ((kind, args),) = spec.items()
        if kind == "choice":
            if not isinstance(args, Sequence) or isinstance(args, str):
                raise ParamError(f"{where}: choice takes a list of values, got {args!r}")
            return Choice(args)
        if kind not in DISTRIBUTIONS:
            raise ParamError(f"{where}: unknown distribution {kind!r}; use one of {_KINDS}")
        if not isinstance(args, Sequence) or isinstance(args, str) or len(args) != 2:
            raise ParamError(f"{where}: {kind} takes [low, high], got {args!r}")
        try:
            return DISTRIBUTIONS[kind](*args)
        except ParamError as exc:
            raise ParamError(f"{where}: {exc}") from None
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool) or spec is None:
        return Fixed(spec)
    raise ParamError(f"{where}: a distribution is one of {_KINDS} or a plain value, got {spec!r}")


_KINDS = "{'uniform': [lo, hi]}, {'log_uniform': [lo, hi]}, {'int': [lo, hi]}, {'choice': [...]}"


# ---------------------------------------------------------------------------- sources


class RandomSpace:
    """``n`` items, each drawn from its own Generator seeded with ``(seed, index)``.

    ``space`` maps names to distributions (or their JSON form). Names are drawn in sorted order,
    so adding a parameter changes the draws of those after it alphabetically but nothing else
    about the seeding.
    """

    def __init__(self, space: Mapping[str, Any], n: int, seed: int = 0) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ParamError(f"RandomSpace: n must be an int >= 0, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ParamError(f"RandomSpace: seed must be an int >= 0, got {seed!r}")
        self.space = {name: distribution(spec, name) for name, spec in sorted(space.items())}
        self.n = int(n)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.n

    def item(self, index: int) -> Item:
        _check_index(index, self.n)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(index)]))
        values = {name: dist.sample(rng) for name, dist in self.space.items()}
        return make_item(index, values, f"item {index}")


class Grid:
    """Every combination of the given values; item ``i`` is combination ``i`` in row-major order
    (the last name varies fastest)."""

    def __init__(self, axes: Mapping[str, Sequence[Any]]) -> None:
        self.axes: dict[str, tuple[Any, ...]] = {}
        for name, values in axes.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ParamError(f"grid: {name!r} needs a non-empty list of values, got {values!r}")
            self.axes[name] = tuple(values)
        self.n = math.prod(len(v) for v in self.axes.values()) if self.axes else 0

    def __len__(self) -> int:
        return self.n

    def item(self, index: int) -> Item:
        _check_index(index, self.n)
        values = {}
        rest = int(index)
        for name, options in reversed(self.axes.items()):
            rest, k = divmod(rest, len(options))
            values[name] = options[k]
        return make_item(index, dict(reversed(values.items())), f"grid item {index}")


class Records:
    """A list of dicts (or any table's rows): item ``i`` is row ``i``."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = list(rows)
        for i, row in enumerate(self.rows):
            if not isinstance(row, Mapping):
                raise ParamError(f"row {i}: expected a dict of parameter values, got {type(row).__name__}")
        # check every row now: a bad value should fail before anything renders
        for i in range(len(self.rows)):
            self.item(i)

    def __len__(self) -> int:
        return len(self.rows)

    def item(self, index: int) -> Item:
        _check_index(index, len(self.rows))
        return make_item(index, self.rows[index], f"row {index}")


def from_table(table: Any) -> Records:
    """Rows of a pandas DataFrame or a pyarrow Table, one item per row."""
    if hasattr(table, "to_pylist"):  # pyarrow.Table
        return Records(table.to_pylist())
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # pandas.DataFrame
        return Records(table.to_dict(orient="records"))
    raise ParamError(f"expected a pandas DataFrame or a pyarrow Table, got {type(table).__name__}")


def load_space(
    spec: str | Path | Mapping[str, Any], n: int | None = None, seed: int | None = None
) -> ItemSource:
    """A source from a space file (JSON, see docs/batch.md) or its dict.

    ``{"random": {name: distribution, ...}, "n": 1000, "seed": 0}`` draws items;
    ``{"grid": {name: [values], ...}}`` takes every combination; ``{"items": [{...}, ...]}`` lists
    them. ``n`` and ``seed`` override the file's (for a grid, ``n`` takes the first n items).
    """
    where = "params"
    if isinstance(spec, (str, Path)):
        where = str(spec)
        try:
            spec = json.loads(Path(spec).read_text())
        except FileNotFoundError:
            raise ParamError(f"parameter space file not found: {spec}") from None
        except json.JSONDecodeError as exc:
            raise ParamError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(spec, Mapping):
        raise ParamError(f"{where}: a parameter space is a JSON object, got {type(spec).__name__}")
    unknown = set(spec) - {"random", "grid", "items", "n", "seed"}
    kinds = [k for k in ("random", "grid", "items") if k in spec]
    if unknown or len(kinds) != 1:
        raise ParamError(
            f"{where}: a parameter space has exactly one of 'random', 'grid' or 'items' "
            f"(plus optional 'n' and 'seed'); got keys {sorted(spec)}"
        )
    count = n if n is not None else spec.get("n")
    if kinds[0] == "random":
        if count is None:
            raise ParamError(f"{where}: a random space needs 'n' (or --n) items")
        space = spec["random"]
        if not isinstance(space, Mapping):
            raise ParamError(f"{where}: 'random' maps names to distributions, got {space!r}")
        return RandomSpace(space, count, int(seed if seed is not None else spec.get("seed", 0)))
    source: ItemSource = Grid(spec["grid"]) if kinds[0] == "grid" else Records(spec["items"])
    if count is not None:
        return Head(source, count)
    return source


class Head:
    """The first ``n`` items of another source."""

    def __init__(self, source: ItemSource, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ParamError(f"n must be an int >= 0, got {n!r}")
        self.source = source
        self.n = min(int(n), len(source))

    def __len__(self) -> int:
        return self.n

    def item(self, index: int) -> Item:
        _check_index(index, self.n)
        return self.source.item(index)


def as_source(params: Any, n: int | None = None, seed: int = 0) -> ItemSource:
    """Whatever render_batch was given as ``params``, as an ItemSource."""
    if params is None:
        return RandomSpace({}, 1 if n is None else n, seed)
    if hasattr(params, "item") and hasattr(params, "__len__") and not isinstance(params, Mapping):
        if isinstance(params, np.ndarray):
            raise ParamError("params: a numpy array has no parameter names; pass a list of dicts or a table")
        return params if n is None else Head(params, n)
    if isinstance(params, (str, Path)) or isinstance(params, Mapping):
        return load_space(params, n, seed)
    if hasattr(params, "to_pylist") or (hasattr(params, "to_dict") and hasattr(params, "columns")):
        source: ItemSource = from_table(params)
    elif isinstance(params, Sequence):
        source = Records(params)
    else:
        raise ParamError(
            "params must be a RandomSpace, a Grid, a space dict or JSON file, a list of dicts, or a "
            f"pandas/pyarrow table; got {type(params).__name__}"
        )
    return source if n is None else Head(source, n)


def param_names(source: ItemSource) -> list[str]:
    """Every parameter name the source's items can carry (what the driver resolves up front)."""
    if isinstance(source, Head):
        return param_names(source.source)
    if isinstance(source, RandomSpace):
        keys: Iterable[str] = source.space
    elif isinstance(source, Grid):
        keys = source.axes
    elif isinstance(source, Records):
        keys = dict.fromkeys(k for row in source.rows for k in row)
    else:
        keys = source.item(0).params if len(source) else []
    return [k for k in keys if k not in RESERVED]


def fingerprint(source: ItemSource) -> str:
    """A digest of what the source's items are (a resumed batch must have the same items)."""
    if isinstance(source, Head):
        data: Any = ["head", source.n, fingerprint(source.source)]
    elif isinstance(source, RandomSpace):
        data = ["random", source.n, source.seed, {k: d.to_json() for k, d in source.space.items()}]
    elif isinstance(source, Grid):
        data = ["grid", {k: list(v) for k, v in source.axes.items()}]
    elif isinstance(source, Records):
        data = ["records", source.rows]
    else:  # an ItemSource of the user's: its items themselves
        data = [type(source).__qualname__, [source.item(i).columns() for i in range(len(source))]]
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_index(index: int, n: int) -> None:
    if not 0 <= index < n:
        raise IndexError(f"item {index} out of range: the source has {n} items")


__all__ = [
    "Choice",
    "Distribution",
    "Fixed",
    "Grid",
    "Head",
    "IntUniform",
    "Item",
    "ItemSource",
    "LogUniform",
    "ParamError",
    "RESERVED",
    "RandomSpace",
    "Records",
    "Uniform",
    "as_source",
    "distribution",
    "fingerprint",
    "from_table",
    "load_space",
    "param_names",
]

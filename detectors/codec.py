"""The detectors' state as plain data, and back: what checkpoints are made of.

A checkpoint is read back from a Kafka topic, so its bytes are input like any other: decoding
them builds only the types listed here, never calls a constructor or a function named by the
data, and refuses the rest with `CodecError`.

`encode(state)` turns an object graph into a tree of None, bool, int, float, str and bytes in
lists, and packs it with MessagePack (`msgspec`). Every list of the tree is a node whose first
item names what it stands for:

    ["l", item, ...]                  list (likewise "t" tuple, "s" set, "f" frozenset)
    ["d", key, value, key, value...]  dict ("o" OrderedDict, "c" Counter)
    ["dd", factory, key, value, ...]  defaultdict, its factory one of FACTORIES
    ["q", maxlen, item, ...]          deque
    ["a", typecode, bytes]            array.array
    [type name, version, field, ...]  an instance of a registered type, its fields in the
                                      order its layout of that version lists them
    ["@", n]                          the n-th object (instance, or mutable container) of the
                                      tree, counted in the order they begin: an object met
                                      twice is the same object again, as in the state

Each registered type has a name (data, not an import path), a version, and the fields of each
version. Encoding an object whose attributes differ from its type's layout fails: a change of
layout is a new version, with a migration from the previous one (`Type.upgrades`). Types the
detectors own are encoded field by field; River's are too, restricted to the River classes the
detectors use (River is pinned), and River's Rust statistics by their fixed-size binary state,
checked for length before River reads it. The coordination index, which holds tens of
thousands of rows, writes them as one table packed apart, with a schema that `msgspec` checks
when reading it (`_IndexTable`), rather than as a node per row.

>>> from collections import deque
>>> state = {"n": 3, "recent": deque([1.5, float("inf")], maxlen=4), "ids": ("a", "b")}
>>> decode(encode(state)) == state
True
>>> decode(encode(["os.system", 1, "echo hi"])) == ["os.system", 1, "echo hi"]  # just data
True
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import functools
import gc
import math
import random
import zlib
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Annotated, Any

import msgspec
from river import anomaly, compose, linear_model, optim, preprocessing, stats
from river.tree import padded
from river.utils import VectorDict

from detectors import (
    accumulate,
    actor_features,
    actor_model,
    actors,
    alerts,
    coordination,
    labels,
    pipeline,
    shift,
    spike,
    stages,
    synchrony,
    windows,
)

FORMAT = 1  # of the tree above; each type has its own version besides
MAX_BYTES = 2 << 30  # a state that inflates beyond this is refused

# The callables a defaultdict may make its values with.
FACTORIES: dict[str, Callable[..., Any]] = {
    "float": float,
    "int": int,
    "list": list,
    "set": set,
    "dict": dict,
    "tuple": tuple,
}
ARRAY_CODES = frozenset("bBhHiIlLqQfd")

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


class CodecError(ValueError):
    """A state that cannot be encoded, or data that is not a state this code can rebuild."""


@dataclasses.dataclass
class Type:
    """A type the codec may rebuild: its name in the data, its version and its fields.

    `get(obj)` gives the values of the fields, in order; `put(obj, values)` sets them on an
    object made with `cls.__new__`; or `make(values)` builds the object from them (for
    immutable types and those River builds natively). `upgrades[v]` takes the fields of
    version v, by name, to those of version v + 1, whose layout is `layouts[v + 1]`.
    """

    name: str
    cls: type
    version: int
    fields: tuple[str, ...]
    get: Callable[[Any], list[Any]]
    put: Callable[[Any, list[Any]], None] | None = None
    make: Callable[[list[Any]], Any] | None = None
    layouts: dict[int, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    upgrades: dict[int, Upgrade] = dataclasses.field(default_factory=dict)


TYPES: dict[str, Type] = {}
BY_CLASS: dict[type, Type] = {}
CONTAINER_TAGS = frozenset({"l", "t", "s", "f", "d", "o", "c", "dd", "q", "a", "@"})


def register(spec: Type) -> Type:
    if spec.name in TYPES or spec.name in CONTAINER_TAGS or spec.cls in BY_CLASS:
        raise ValueError(f"{spec.name} is registered already")
    spec.layouts[spec.version] = spec.fields
    TYPES[spec.name] = spec
    BY_CLASS[spec.cls] = spec
    return spec


def _attributes(cls: type, fields: tuple[str, ...], name: str) -> Type:
    """A type whose state is its instance dict, exactly `fields`."""
    expected = frozenset(fields)

    def get(obj: Any) -> list[Any]:
        d = _laid_out(obj, expected, name)
        return [d[f] for f in fields]

    def put(obj: Any, values: list[Any]) -> None:
        obj.__dict__.update(zip(fields, values, strict=True))

    return Type(name, cls, 1, fields, get, put)


def _laid_out(obj: Any, expected: frozenset[str], name: str) -> dict[str, Any]:
    """The object's instance dict, if its attributes are exactly `expected`."""
    d: dict[str, Any] = obj.__dict__
    if d.keys() != expected:
        raise CodecError(
            f"{name} has the fields {sorted(d)}, its layout {sorted(expected)}: "
            "declare the new layout as a new version, with its migration"
        )
    return d


def _slots(cls: type, fields: tuple[str, ...], name: str) -> Type:
    def get(obj: Any) -> list[Any]:
        return [getattr(obj, f) for f in fields]

    def put(obj: Any, values: list[Any]) -> None:
        for f, value in zip(fields, values, strict=True):
            object.__setattr__(obj, f, value)

    return Type(name, cls, 1, fields, get, put)


def _struct_fields(obj: msgspec.Struct) -> list[Any]:
    return list(msgspec.structs.astuple(obj))


def own(name: str, cls: type, names: Iterable[str] | str | None = None, version: int = 1) -> Type:
    """Register a class of ours: a dataclass's fields by default, else `names` (a string of
    them, or a list)."""
    if names is None:
        names = [f.name for f in dataclasses.fields(cls)]
    fields = tuple(names.split() if isinstance(names, str) else names)
    if hasattr(cls, "_fields"):  # a NamedTuple
        spec = Type(name, cls, 1, fields, list, make=lambda values: cls(*values))
    elif issubclass(cls, msgspec.Struct) and cls.__struct_config__.frozen:
        # A frozen msgspec struct: its fields in order, as a NamedTuple's.
        spec = Type(name, cls, 1, fields, _struct_fields, make=lambda values: cls(*values))
    elif "__slots__" in vars(cls):
        spec = _slots(cls, fields, name)
    else:
        spec = _attributes(cls, fields, name)
    spec.version = version
    return register(spec)


def registered(version: int) -> Callable[[type], type]:
    """Class decorator: register a dataclass under its own name."""

    def decorate(cls: type) -> type:
        own(cls.__name__, cls, version=version)
        return cls

    return decorate


# -- the encoding -----------------------------------------------------------------------------

_SCALARS = frozenset({type(None), bool, int, float, str, bytes})


def _factory_name(factory: Any) -> Any:
    if factory is None:
        return None
    for name, known in FACTORIES.items():
        if factory is known:
            return name
    if (
        isinstance(factory, functools.partial)
        and not factory.keywords
        and _factory_name(factory.func) is not None
    ):
        return ["partial", _factory_name(factory.func), *map(_to_tree_plain, factory.args)]
    raise CodecError(f"a defaultdict makes its values with {factory!r}, not one of FACTORIES")


def _to_tree_plain(x: Any) -> Any:
    return Encoder().tree(x)


class Encoder:
    """One state's tree: objects met twice are referenced by their order of first meeting."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def tree(self, x: Any) -> Any:
        t = type(x)
        if t in _SCALARS:
            return x
        if t is tuple:
            return ["t", *self.items(x)]
        if t is frozenset:
            return ["f", *self.items(x)]
        seen = self.seen
        ref = seen.get(id(x))
        if ref is not None:
            return ["@", ref]
        seen[id(x)] = len(seen)
        if t is list:
            return ["l", *self.items(x)]
        if t is dict or t is OrderedDict or t is Counter or t is defaultdict:
            out: list[Any] = [{dict: "d", OrderedDict: "o", Counter: "c"}.get(t, "dd")]
            if t is defaultdict:
                out.append(_factory_name(x.default_factory))
            tree = self.tree
            for key, value in x.items():
                out.append(tree(key))
                out.append(tree(value))
            return out
        if t is set:
            return ["s", *self.items(x)]
        if t is deque:
            return ["q", x.maxlen, *self.items(x)]
        if t is array.array:
            return ["a", x.typecode, x.tobytes()]
        spec = BY_CLASS.get(t)
        if spec is None:
            raise CodecError(f"no encoding of {t.__module__}.{t.__qualname__}")
        return [spec.name, spec.version, *self.items(spec.get(x))]

    def items(self, xs: Iterable[Any]) -> list[Any]:
        tree = self.tree
        return [x if type(x) in _SCALARS else tree(x) for x in xs]


class Decoder:
    """Rebuilds a tree of `Encoder`'s, refusing anything else."""

    def __init__(self) -> None:
        self.objects: list[Any] = []

    def value(self, node: Any) -> Any:
        t = type(node)
        if t in _SCALARS:
            return node
        if t is not list or not node or type(node[0]) is not str:
            raise CodecError(f"not a node: {str(node)[:80]!r}")
        tag = node[0]
        if tag == "t":
            return tuple(self.items(node, 1))
        if tag == "f":
            return frozenset(self.items(node, 1))
        if tag == "@":
            if len(node) != 2 or type(node[1]) is not int or not 0 <= node[1] < len(self.objects):
                raise CodecError(f"a reference to no object: {node[1:]!r}")
            found = self.objects[node[1]]
            if found is _PENDING:
                raise CodecError("a reference to an object inside its own making")
            return found
        objects = self.objects
        index = len(objects)
        if tag == "l":
            out: Any = []
            objects.append(out)
            out.extend(self.items(node, 1))
            return out
        if tag in ("d", "o", "c", "dd"):
            items = node[1:]
            if tag == "dd":
                if not items:
                    raise CodecError("a defaultdict without its factory")
                out = defaultdict(self.factory(items[0]))
                items = items[1:]
            else:
                out = {"d": dict, "o": OrderedDict, "c": Counter}[tag]()
            if len(items) % 2:
                raise CodecError("a mapping with a key and no value")
            objects.append(out)
            value = self.value
            for i in range(0, len(items), 2):
                out[value(items[i])] = value(items[i + 1])
            return out
        if tag == "s":
            out = set()
            objects.append(out)
            out.update(self.items(node, 1))
            return out
        if tag == "q":
            if len(node) < 2 or not (node[1] is None or (type(node[1]) is int and node[1] >= 0)):
                raise CodecError("a deque without its bound")
            out = deque(maxlen=node[1])
            objects.append(out)
            out.extend(self.items(node, 2))
            return out
        if tag == "a":
            code, data = node[1:] if len(node) == 3 else (None, None)
            if code not in ARRAY_CODES or type(data) is not bytes:
                raise CodecError(f"not an array: {str(node)[:80]!r}")
            out = array.array(code)
            objects.append(out)
            try:
                out.frombytes(data)
            except ValueError as e:
                raise CodecError(f"array: {e}") from None
            return out
        return self.instance(node, index)

    def items(self, node: list[Any], start: int) -> list[Any]:
        value = self.value
        return [x if type(x) in _SCALARS else value(x) for x in node[start:]]

    def instance(self, node: list[Any], index: int) -> Any:
        name = node[0]
        spec = TYPES.get(name)
        if spec is None:
            raise CodecError(f"unknown type {name[:80]!r}: not one this code rebuilds")
        version = node[1] if len(node) > 1 else None
        layout = spec.layouts.get(version) if type(version) is int else None
        if layout is None or version not in (spec.version, *spec.upgrades):
            raise CodecError(f"{name} of version {version!r}: this code reads {spec.version}")
        if len(node) - 2 != len(layout):
            raise CodecError(f"{name} v{version}: {len(node) - 2} fields, not {len(layout)}")
        objects = self.objects
        obj: Any = None
        if spec.make is None:
            obj = object.__new__(spec.cls)
            objects.append(obj)
        else:
            objects.append(_PENDING)
        values = self.items(node, 2)
        while version != spec.version:
            named = spec.upgrades[version](dict(zip(layout, values, strict=True)))
            version += 1
            layout = spec.layouts[version]
            values = [named[f] for f in layout]
        if spec.put is not None:
            spec.put(obj, values)
        else:
            assert spec.make is not None
            obj = objects[index] = spec.make(values)
        return obj

    def factory(self, node: Any) -> Callable[[], Any] | None:
        if node is None:
            return None
        if type(node) is str and node in FACTORIES:
            return FACTORIES[node]
        if type(node) is list and len(node) >= 2 and node[0] == "partial":
            func = self.factory(node[1])
            args = [Decoder().value(arg) for arg in node[2:]]
            if func is not None and all(_plain(arg) for arg in args):
                return functools.partial(func, *args)
        raise CodecError(f"a defaultdict factory not among FACTORIES: {str(node)[:80]!r}")


_PENDING = object()


def _plain(x: Any) -> bool:
    """A scalar, or a tuple of them: what a defaultdict factory's arguments may be."""
    return type(x) in _SCALARS or (type(x) is tuple and all(type(y) in _SCALARS for y in x))


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off: a tree of many small lists, made or read, sets it off
    again and again, for more than half the time; and a tree has no garbage cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def encode(state: Any) -> bytes:
    """The state as compressed MessagePack; `CodecError` for what has no encoding."""
    return compress(pack(state))


def pack(state: Any) -> bytes:
    """The state as MessagePack, uncompressed: the part of `encode` that reads the state."""
    try:
        with _no_gc():
            return _encoder.encode(Encoder().tree(state))
    except (TypeError, OverflowError) as e:  # msgspec: an int beyond 64 bits, say
        raise CodecError(str(e)) from None


def compress(packed: bytes) -> bytes:
    """`pack`'s bytes as `encode` gives them."""
    return zlib.compress(packed, 1)


def decode(blob: bytes) -> Any:
    """The state `encode` gave `blob`; `CodecError` for anything else. Builds only the
    registered types and the containers above."""
    inflate = zlib.decompressobj()
    try:
        packed = inflate.decompress(blob, MAX_BYTES)
        if inflate.unconsumed_tail or not inflate.eof:
            raise CodecError("not a whole compressed state, or larger than MAX_BYTES")
        with _no_gc():
            return Decoder().value(_decoder.decode(packed))
    except CodecError:
        raise
    except RecursionError:
        raise CodecError("nested too deep") from None
    except Exception as e:  # whatever the data makes a constructor or River raise
        raise CodecError(f"{type(e).__name__}: {e}") from None


# -- the types --------------------------------------------------------------------------------


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


for _name, _cls in [
    ("pipeline.Pending", pipeline._Pending),
    ("windows.Tally", windows._Tally),
    ("Activity", actor_features.Activity),
    ("actors.Pending", actors._Pending),
    ("Alert", alerts.Alert),  # actor alerts the coordinator holds until their window closes
    ("Episode", alerts.Episode),
    ("EpisodePolicy", alerts.EpisodePolicy),
    ("coordination.Group", coordination._Group),
    ("LabelConfig", labels.LabelConfig),
    ("labels.Seen", labels._Seen),
]:
    own(_name, _cls)
own("Row", coordination.Row, coordination.Row.__struct_fields__)

for _name, _cls, _attrs in [
    ("Detect", stages.Detect, "actors index processor"),
    ("PartitionCounter", windows.PartitionCounter,
     "closed_until dedup_horizon_s dedup_max_ids group lateness_s max_ts open seen source "
     "sources window_s"),
    ("ActivityCollector", actor_features.ActivityCollector, "open source"),
    ("CoordinationCollector", coordination.CoordinationCollector, "open source"),
    ("SignalProcessor", pipeline.SignalProcessor, "born config expected groups idle_s policy"),
    ("LabelGate", labels.LabelGate,
     "abusive_until config dropped label_ids latest pairs prioritiser seen suppressed_until "
     "unlabelled verdicts"),
    ("Prioritiser", labels.Prioritiser, "learning_rate model n prior_weight"),
    ("Rarity", spike.Rarity, spike.Rarity.__slots__),
]:  # fmt: skip
    own(_name, _cls, _attrs)

# GroupClock: version 1 is the layout before a silence of the whole group restarted its
# sources' silences: such a clock has not resumed since.
_CLOCK = own(
    "GroupClock",
    windows.GroupClock,
    "born closed_until first heard idle_s resumed sources",
    version=2,
)
_CLOCK.layouts[1] = tuple(f for f in _CLOCK.fields if f != "resumed")
_CLOCK.upgrades[1] = lambda state: {**state, "resumed": -math.inf}

# DetectionConfig and pipeline.Series: version 1 is the layout before sustained shifts were
# judged (detectors/shift.py). A series of version 1 gets its shift detector when it next steps.
# DetectionConfig version 2 is the layout before first contacts were judged over longer spans.
_CONFIG = own("DetectionConfig", pipeline.DetectionConfig, version=3)
_SHIFT_SETTINGS = ("shift_horizon_s", "shift_threshold", "shift_ratio")
_LONG_SETTINGS = ("accumulate_long_horizon_s",)
_CONFIG.layouts[2] = tuple(f for f in _CONFIG.fields if f not in _LONG_SETTINGS)
_CONFIG.layouts[1] = tuple(f for f in _CONFIG.layouts[2] if f not in _SHIFT_SETTINGS)


def _defaults(cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.name in names}


_CONFIG.upgrades[1] = lambda state: state | _defaults(pipeline.DetectionConfig, _SHIFT_SETTINGS)
_CONFIG.upgrades[2] = lambda state: state | _defaults(pipeline.DetectionConfig, _LONG_SETTINGS)
_SERIES = own("pipeline.Series", pipeline._Series, version=2)
_SERIES.layouts[1] = tuple(f for f in _SERIES.fields if f not in ("shift", "accumulated"))
_SERIES.upgrades[1] = lambda state: {**state, "shift": None, "accumulated": False}
own("ShiftDetector", shift.ShiftDetector,
    "began clip counts dispersion dispersion_memory dispersion_weight factor factors horizon "
    "horizon_s last_flag level max_flagged memory min_excess n ratio run score_scale slot "
    "threshold weight window_s")  # fmt: skip

# pipeline.Group: version 1 is the layout before first contacts (detectors/accumulate.py).
_GROUP = own("pipeline.Group", pipeline._Group, version=2)
_GROUP.layouts[1] = tuple(f for f in _GROUP.fields if f not in ("lasting", "population"))
_GROUP.upgrades[1] = lambda state: {**state, "lasting": OrderedDict(), "population": None}
# Coordinator: version 1 is the layout before the actor alerts had a clock of their own.
_COORDINATOR = own(
    "Coordinator",
    coordination.Coordinator,
    "actor_alerts actor_marks closed_until config folded folded_until groups marks owner "
    "pending recent sources",
    version=2,
)
_COORDINATOR.layouts[1] = tuple(
    f for f in _COORDINATOR.fields if f not in ("actor_marks", "folded_until")
)
# Every source's actor alerts came with its candidates, under one mark: both clocks were one.
_COORDINATOR.upgrades[1] = lambda state: {
    **state,
    "actor_marks": dict(state["marks"]),
    "folded_until": state["closed_until"],
}
own("Population", accumulate.Population, "at horizon limit mean memory n ring total weight")

# Ingest: version 1 is the layout before first contacts were counted (detectors/accumulate.py),
# version 2 before authors' schedules were kept (detectors/synchrony.py).
_INGEST = own(
    "Ingest", stages.Ingest, "collector contacts counter first rows schedules source", version=3
)
_INGEST.layouts[2] = tuple(sorted(set(_INGEST.fields) - {"schedules"}))
_INGEST.layouts[1] = tuple(sorted(set(_INGEST.layouts[2]) - {"contacts"}))


def _ingest_v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """First contacts are counted from here on, each pair as new once."""
    state["contacts"] = accumulate.FirstContacts(state["counter"].dedup_horizon_s)
    return state


def _ingest_v2_to_v3(state: dict[str, Any]) -> dict[str, Any]:
    """Schedules are kept from here on, with the default settings and the partition's
    windows: an author's schedule is known once they have kept it again for long enough."""
    window_s = state["counter"].window_s
    state["schedules"] = stages.new_schedules(coordination.CoordinationConfig(window_s=window_s))
    return state


_INGEST.upgrades[1] = _ingest_v1_to_v2
_INGEST.upgrades[2] = _ingest_v2_to_v3
own("Schedules", synchrony.Schedules,
    "horizon_s max_authors min_slots open slot_s times window_s")  # fmt: skip

# CoordinationConfig and Candidate: version 1 is the layout before synchronised accounts;
# CoordinationConfig's version 2 the one before new domains kept their rows for hours.
_COORDINATION = own("CoordinationConfig", coordination.CoordinationConfig, version=3)
_COORDINATION_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(coordination.CoordinationConfig)
}
_SYNCHRONY_SETTINGS = {
    name: value
    for name, value in _COORDINATION_DEFAULTS.items()
    if name.startswith(("synchrony_", "min_synchronised", "max_schedules"))
}
_COORDINATION.layouts[2] = tuple(f for f in _COORDINATION.fields if f != "domain_window_s")
_COORDINATION.layouts[1] = tuple(
    f for f in _COORDINATION.layouts[2] if f not in _SYNCHRONY_SETTINGS
)
_COORDINATION.upgrades[1] = lambda state: {**state, **_SYNCHRONY_SETTINGS}
# New domains keep their rows for hours from here on, as long as the default setting says.
_COORDINATION.upgrades[2] = lambda state: {
    **state,
    "domain_window_s": _COORDINATION_DEFAULTS["domain_window_s"],
}


# CoordinationIndex: its rows as one table, packed apart (`_IndexTable`). Version 1 is the
# layout before new domains kept their rows for hours, version 2 the one before the table,
# each of its rows a node of the tree (tens of thousands of them, most of a stage-2
# partition's checkpoint).
Natural = Annotated[int, msgspec.Meta(ge=0)]


class _Held(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Routes in order, the i-th holding `counts[i]` rows: the next of `positions`, each the
    position of a row in the table. Flat, so that no list is made per route."""

    routes: list[str]
    counts: list[Natural]
    positions: list[Natural]


class _IndexTable(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A coordination index's rows, each once however many keys hold it, and what holds
    them, in order: `keys`, `new_domains`, and each open window of `pending` (a route with
    one row holds the row, with several a dict of them by event id)."""

    rows: list[coordination.Row]
    keys: _Held
    new_domains: _Held
    pending: list[tuple[float, _Held]]
    domains_seen: list[tuple[str, float]]


_TABLE_ENCODER = msgspec.msgpack.Encoder()
_TABLE_DECODER = msgspec.msgpack.Decoder(_IndexTable)
_INDEX_STATE = frozenset(
    ["closed_until", "config", "domains_seen", "first", "keys", "new_domains", "pending"]
)


def _pack_index(state: dict[str, Any]) -> dict[str, Any]:
    """An index's attributes (of version 2's layout) with its rows packed as `table`. Its
    loops are the builtins' (`map`, `zip`, `chain`): an index holds 100,000 keys and more."""

    def rows_of(found: Any) -> Sequence[coordination.Row]:  # an open window's row, or rows
        return list(found.values()) if type(found) is dict else [found]

    pending: list[tuple[float, dict[str, Sequence[coordination.Row]]]] = [
        (start, {route: rows_of(found) for route, found in window.items()})
        for start, window in state["pending"].items()
    ]
    # A key's row, or rows (version 2: always a list).
    keys: dict[str, Sequence[coordination.Row]] = {
        r: found if type(found) is list else [found] for r, found in state["keys"].items()
    }
    helds = [keys, state["new_domains"], *(window for _, window in pending)]
    # Each row once, in the order first held; then each holder's rows by their positions.
    every = list(chain.from_iterable(chain.from_iterable(held.values() for held in helds)))
    unique = dict(zip(map(id, every), every, strict=True))
    at = dict(zip(unique, range(len(unique)), strict=True))

    def held(rows: dict[str, Sequence[coordination.Row]]) -> _Held:
        routes = list(rows.values())
        positions = list(map(at.__getitem__, map(id, chain.from_iterable(routes))))
        return _Held(list(rows), list(map(len, routes)), positions)

    table = _IndexTable(
        list(unique.values()),
        held(keys),
        held(state["new_domains"]),
        [(start, held(window)) for start, window in pending],
        list(state["domains_seen"].items()),
    )
    try:
        packed = _TABLE_ENCODER.encode(table)
    except (TypeError, OverflowError) as e:  # a row of the wrong types, from a migration
        raise CodecError(f"CoordinationIndex: {e}") from None
    named = {f: state[f] for f in ("closed_until", "config", "first")}
    return {**named, "table": packed}


def _index_get(index: coordination.CoordinationIndex) -> list[Any]:
    packed = _pack_index(_laid_out(index, _INDEX_STATE, "CoordinationIndex"))
    return [packed[f] for f in _INDEX.fields]


def _index_put(index: coordination.CoordinationIndex, values: list[Any]) -> None:
    closed_until, config, first, packed = values
    if type(packed) is not bytes:
        raise CodecError("CoordinationIndex: its table is not bytes")
    try:
        table = _TABLE_DECODER.decode(packed)
    except msgspec.DecodeError as e:  # ValidationError among them
        raise CodecError(f"CoordinationIndex: {e}") from None
    rows = table.rows

    def routes(held: _Held) -> Iterator[tuple[str, list[coordination.Row]]]:
        if sum(held.counts) != len(held.positions):
            raise CodecError("CoordinationIndex: its routes hold other than its positions")
        found = iter(list(map(rows.__getitem__, held.positions)))
        for route, count in zip(held.routes, held.counts, strict=True):
            yield route, list(islice(found, count))

    try:
        index.keys = OrderedDict(
            (route, found[0] if len(found) == 1 else found) for route, found in routes(table.keys)
        )
        index.new_domains = OrderedDict(routes(table.new_domains))
        index.pending = {
            start: {
                route: found[0] if len(found) == 1 else {row.event_id: row for row in found}
                for route, found in routes(window)
                if found
            }
            for start, window in table.pending
        }
    except CodecError:
        raise
    except IndexError:
        raise CodecError("CoordinationIndex: a position beyond its table") from None
    except ValueError:  # zip's: as many counts as routes
        raise CodecError("CoordinationIndex: routes and counts of different lengths") from None
    index.domains_seen = OrderedDict(table.domains_seen)
    index.closed_until, index.config, index.first = closed_until, config, first


_INDEX = register(
    Type(
        "CoordinationIndex",
        coordination.CoordinationIndex,
        3,
        ("closed_until", "config", "first", "table"),
        _index_get,
        _index_put,
    )
)
_INDEX.layouts[2] = tuple(sorted(_INDEX_STATE))
_INDEX.layouts[1] = tuple(f for f in _INDEX.layouts[2] if f != "new_domains")
# The domains' rows are gathered from here on: a slow campaign shows once it has gathered
# enough accounts again.
_INDEX.upgrades[1] = lambda state: {**state, "new_domains": OrderedDict()}
_INDEX.upgrades[2] = _pack_index
_CANDIDATE = own("Candidate", coordination.Candidate, version=3)
_CANDIDATE.layouts[2] = tuple(f for f in _CANDIDATE.fields if f != "watched_s")
_CANDIDATE.layouts[1] = tuple(f for f in _CANDIDATE.layouts[2] if f != "schedule")
_CANDIDATE.upgrades[1] = lambda state: {**state, "schedule": ()}
# How long the index had watched is known from here on; before, as if always.
_CANDIDATE.upgrades[2] = lambda state: {**state, "watched_s": math.inf}
own("FirstContacts", accumulate.FirstContacts, "horizon_s max_pairs seen")
# Accumulator: version 1 is the layout before the longer span; such a series keeps the hour's.
_ACCUMULATOR = own("Accumulator", accumulate.Accumulator,
    "at block horizon horizon_s judged_s last_flag long long_horizon_s max_flagged "
    "max_flagged_s mean memory memory_s min_total n partial prior_windows ratio ring run "
    "threshold total warmup weight window_s", version=2)  # fmt: skip
_LONG_FIELDS = ("block", "judged_s", "long", "long_horizon_s", "partial")
_ACCUMULATOR.layouts[1] = tuple(f for f in _ACCUMULATOR.fields if f not in _LONG_FIELDS)


def _accumulator_v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    block = max(1, round(accumulate.BLOCK_S / state["window_s"]))
    return state | {"block": block, "judged_s": state["horizon_s"], "long": None,
                    "long_horizon_s": 0.0, "partial": 0}  # fmt: skip


_ACCUMULATOR.upgrades[1] = _accumulator_v1_to_v2

# SpikeDetector: version 1 is the layout before `anomaly` judged rarity (no horizon, no tails).
_SPIKE_V2 = (
    "alpha beta clip counts daily first_t floor horizon lately level magnitude max_shielded "
    "min_count n peak phi prior_level recent refractory residuals season season_alpha "
    "season_slots seasonal shielded short_alpha tails threshold trend var_alpha warmup window_s"
)
_SPIKE = own("SpikeDetector", spike.SpikeDetector, _SPIKE_V2, version=2)
_SPIKE.layouts[1] = tuple(
    sorted({*_SPIKE.fields, "two_sided", "calibrate", "evidence", "evidence_sq"} - {
        "horizon", "lately", "tails"})
)  # fmt: skip


def _spike_v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """The rarity evidence starts afresh, with the horizon `pipeline.rate_detector` gives (none
    to per-account series, which have no seasonal profile)."""
    for old in ("two_sided", "calibrate", "evidence", "evidence_sq"):
        del state[old]
    horizon = state["horizon"] = spike.HORIZON if state["season_slots"] else 0
    state["lately"] = deque(maxlen=spike.RECENT) if horizon else None
    state["tails"] = [spike.Rarity(horizon) for _ in range(5)] if horizon else []
    return state


_SPIKE.upgrades[1] = _spike_v1_to_v2

# ActorConfig and ActorModel: version 1 is the layout before the hourly gate
# (`min_events_1h`), which they get at its default.
_ACTOR_CONFIG = own("ActorConfig", actors.ActorConfig, version=2)
_ACTOR_CONFIG.layouts[1] = tuple(f for f in _ACTOR_CONFIG.fields if f != "min_events_1h")
_MIN_EVENTS_1H = actors.ActorConfig.min_events_1h
_ACTOR_CONFIG.upgrades[1] = lambda state: {**state, "min_events_1h": _MIN_EVENTS_1H}
_ACTOR_MODEL = own(
    "ActorModel",
    actor_model.ActorModel,
    "edge learn_every median min_events min_events_1h min_score model n pipeline q seed skipped "
    "threshold warmup",
    version=2,
)
_ACTOR_MODEL.layouts[1] = tuple(f for f in _ACTOR_MODEL.fields if f != "min_events_1h")
_ACTOR_MODEL.upgrades[1] = lambda state: {**state, "min_events_1h": _MIN_EVENTS_1H}
# ActorProcessor: version 1 is the layout before episodes raised on the hour's scale resolved
# after an hour; its open episodes resolve after its cooldown, as they would have. Version 2
# is the one before it kept its first window: it has watched for ever, as it judged then.
_ACTOR_PROCESSOR = own(
    "ActorProcessor",
    actors.ActorProcessor,
    "actors closed_until config first hour_policy hourly model open pending policy",
    version=3,
)
_ACTOR_PROCESSOR.layouts[2] = tuple(f for f in _ACTOR_PROCESSOR.fields if f != "first")
_ACTOR_PROCESSOR.layouts[1] = tuple(
    f for f in _ACTOR_PROCESSOR.layouts[2] if f not in ("hour_policy", "hourly")
)


def _actor_processor_v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    policy = state["policy"]
    cooldown = max(policy.cooldown_s, actors.HOUR_S)
    return {
        **state,
        "hour_policy": alerts.EpisodePolicy(cooldown, policy.update_every),
        "hourly": set(),
    }


_ACTOR_PROCESSOR.upgrades[1] = _actor_processor_v1_to_v2
_ACTOR_PROCESSOR.upgrades[2] = lambda state: {**state, "first": -math.inf}

# ActorState: its packed state (arrays as bytes), checked before it is set.
_NUMBERS_BYTES = len(actor_features.ActorState().numbers) * 8
_RING = actor_features.ActorState.__slots__.index("ring")
_HOUR_BYTES = 2 * actor_features.HOUR_BLOCKS * 4  # the hour's blocks at the ring's end


def _actor_put(obj: actor_features.ActorState, values: list[Any]) -> None:
    numbers, ring = values[1], values[_RING]
    if type(numbers) is not bytes or len(numbers) != _NUMBERS_BYTES:
        raise CodecError("ActorState: numbers of the wrong size")
    if not (
        ring is None or (type(ring) is bytes and len(ring) % 8 == 0 and len(ring) > _HOUR_BYTES)
    ):
        raise CodecError("ActorState: a ring of the wrong size")
    obj.__setstate__(values)


def _actor_v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """The ring gains the hour's blocks, empty: for the hour after the upgrade, the hourly
    counts hold what came since."""
    if state["ring"] is not None:
        if type(state["ring"]) is not bytes or len(state["ring"]) % 8:
            raise CodecError("ActorState v1: a ring of the wrong size")
        state["ring"] += bytes(_HOUR_BYTES)
    return state


# ActorState: version 1 is the layout before the hourly counts (`features`' `*_1h`).
_ACTOR_STATE = register(
    Type(
        "ActorState",
        actor_features.ActorState,
        2,
        actor_features.ActorState.__slots__,
        actor_features.ActorState.__getstate__,
        _actor_put,
    )
)
_ACTOR_STATE.layouts[1] = _ACTOR_STATE.fields
_ACTOR_STATE.upgrades[1] = _actor_v1_to_v2

# River: the classes the detectors use, field by field, as River 0.26 lays them out.
for _name, _cls, _attrs in [
    ("river.Quantile", stats.Quantile, "_is_updated _quantile q"),
    ("river.EWMean", stats.EWMean, "_ewmean fading_factor"),
    ("river.EWVar", stats.EWVar, "_ewvar fading_factor"),
    ("river.Pipeline", compose.Pipeline,
     "_inference_transformers _last_step_cached _last_step_params _plan steps"),
    ("river.StandardScaler", preprocessing.StandardScaler,
     "counts means vars window_size with_std"),
    ("river.HalfSpaceTrees", anomaly.HalfSpaceTrees,
     "_first_window _tree_nodes counter height limits n_trees rng seed trees window_size"),
    ("river.PaddedBranch", padded.PaddedBranch, "children feature l_mass r_mass threshold"),
    ("river.PaddedLeaf", padded.PaddedLeaf, "l_mass r_mass"),
    ("river.OneClassSVM", anomaly.OneClassSVM,
     "_weights _y_name clip_gradient initializer intercept intercept_init intercept_lr l1 l2 "
     "loss nu optimizer"),
    ("river.LogisticRegression", linear_model.LogisticRegression,
     "_weights _y_name clip_gradient initializer intercept intercept_init intercept_lr l1 l2 "
     "loss optimizer"),
    ("river.SGD", optim.SGD, "lr n_iterations"),
    ("river.Constant", optim.schedulers.Constant, "learning_rate"),
    ("river.Log", optim.losses.Log, "weight_neg weight_pos"),
    ("river.Hinge", optim.losses.Hinge, "threshold"),
    ("river.Zeros", optim.initializers.Zeros, "value"),
]:  # fmt: skip
    register(_attributes(_cls, tuple(_attrs.split()), _name))


def _rust(name: str, cls: type, new_args: int) -> None:
    """A River statistic of Rust: its constructor's arguments (floats) and its binary state,
    of the fixed size River 0.26 gives it, which River reads."""
    size = len(cls(*[0.5] * new_args).__getstate__())

    def get(obj: Any) -> list[Any]:
        return [list(obj.__reduce_ex__(2)[1][1:]), obj.__getstate__()]

    def make(values: list[Any]) -> Any:
        args, state = values
        if (
            type(args) is not list
            or len(args) != new_args
            or any(type(a) is not float for a in args)
            or type(state) is not bytes
            or len(state) != size
        ):
            raise CodecError(f"{name}: not a state of {size} bytes")
        obj = cls(*args)
        obj.__setstate__(state)
        return obj

    register(Type(name, cls, 1, ("args", "state"), get, make=make))


_rust("river.RsQuantile", type(stats.Quantile()._quantile), 0)
_rust("river.RsEWMean", type(stats.EWMean()._ewmean), 1)
_rust("river.RsEWVar", type(stats.EWVar()._ewvar), 1)


def _vector_get(obj: VectorDict[Any, Any]) -> list[Any]:
    _, (data, factory, mask, *_) = obj.__reduce__()
    if factory is not None or mask is not None:
        raise CodecError("a VectorDict with a default factory or a mask")
    return [data]


def _vector_make(values: list[Any]) -> VectorDict[Any, Any]:
    (data,) = values
    if type(data) is not dict:
        raise CodecError("a VectorDict of no dict")
    return VectorDict(data)


register(Type("river.VectorDict", VectorDict, 1, ("data",), _vector_get, make=_vector_make))


def _random_make(values: list[Any]) -> random.Random:
    rng = random.Random()
    try:
        rng.setstate(tuple(values[0]))
    except (TypeError, ValueError, OverflowError) as e:
        raise CodecError(f"random.Random: {e}") from None
    return rng


register(Type("Random", random.Random, 1, ("state",), lambda r: [r.getstate()], make=_random_make))

"""The peer of bench/throughput.py: a Quix Streams application counting events per key.

    python bench/quix_peer.py --broker 127.0.0.1:PORT --topics A B --total N [--state]

Reads the topics from the beginning in a group of its own and, for each message, adds one
to its key's count: in RocksDB-backed state with a changelog (`--state`, Quix Streams'
stateful `apply`), or in a plain dict. Prints one JSON line with the events per second from
its first message to the `total`th. Quix Streams is not a dependency of abuse-monitor:
bench/throughput.py runs this script with a Python of its own where it is installed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from typing import Any

from quixstreams import Application, State


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", required=True, help="host:port")
    parser.add_argument("--topics", nargs="+", required=True)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--state", action="store_true", help="count in RocksDB-backed state")
    args = parser.parse_args()

    app = Application(
        broker_address=args.broker,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="bench-quix-"),
        loglevel="WARNING",
    )
    seen = {"n": 0, "started": 0.0, "ended": 0.0}
    counts: dict[Any, int] = {}

    def tick() -> None:
        if seen["n"] == 0:
            seen["started"] = time.perf_counter()
        seen["n"] += 1
        if seen["n"] == args.total:
            seen["ended"] = time.perf_counter()
            app.stop()

    def count_in_state(value: Any, key: Any, timestamp: int, headers: Any, state: State) -> Any:
        state.set("n", state.get("n", 0) + 1)
        tick()
        return value

    def count_in_dict(value: Any, key: Any, timestamp: int, headers: Any) -> Any:
        counts[key] = counts.get(key, 0) + 1
        tick()
        return value

    for name in args.topics:
        sdf = app.dataframe(app.topic(name, value_deserializer="json"))
        if args.state:
            sdf.apply(count_in_state, stateful=True, metadata=True)
        else:
            sdf.apply(count_in_dict, metadata=True)
    app.run()
    per_s = args.total / (seen["ended"] - seen["started"])
    print(json.dumps({"events": seen["n"], "per_s": per_s, "state": args.state}))


if __name__ == "__main__":
    main()

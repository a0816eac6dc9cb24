"""Streams through the real engine and switches while it plays (a subprocess of the live tests).

    python tests/live_driver.py MODEL --seconds S [--codebooks-at T K] [--model-at T MODEL2]
        [--codebooks-after-model K] [--settle S] [--bypass] [--cycle-monitors S]
        [--replay-at T] [--replay-after-stop] [--classic-at T] [--classic-off-at T] [--monitor-at T MODE]...

Run under the private audio server's environment (PULSE_SOURCE/PULSE_SINK), it opens the real
PortAudio devices through the Engine's public API, exactly as the window does, prints
"streaming" on stderr once it plays, "landed T" (seconds since then) when a switch is running in
the stream, and the session summary as JSON on stdout at the end. With --codebooks-after-model
the codebook switch is asked `--settle` s after the model switch landed, and the driver ends
`--settle` s after the last switch landed. --replay-at asks for the instant replay while streaming
(the driver then streams until it is done); --replay-after-stop asks for it again after Stop and
waits for it to end. Every engine event is printed on stderr as "kind: message".
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio.engine import Engine, EngineConfig  # after the path above
from app.audio.metrics import EngineEvent

if TYPE_CHECKING:
    from app.codec.streaming import StreamingCodec


REPLAY_TIMEOUT_S = 120.0


def running_codec(engine: Engine) -> StreamingCodec:
    """The codec the engine streams through: it runs."""
    codec = engine.codec
    assert codec is not None, "the engine runs no codec"
    return codec


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--codebooks-at", nargs=2, metavar=("T", "K"))
    parser.add_argument("--model-at", nargs=2, metavar=("T", "MODEL"))
    parser.add_argument("--codebooks-after-model", type=int)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--bypass", action="store_true")
    parser.add_argument("--cycle-monitors", type=float, metavar="S",
                        help="run the classic paths and hear every path in turn, S seconds each")
    parser.add_argument("--replay-at", type=float, metavar="T", help="the instant replay at T s, streaming")
    parser.add_argument("--replay-after-stop", action="store_true", help="and once more after Stop")
    parser.add_argument("--replay-seconds", type=float, help="how much the replays play back (default: all)")
    parser.add_argument("--classic-at", type=float, metavar="T", help="turn the classic paths on at T s")
    parser.add_argument("--classic-off-at", type=float, metavar="T", help="and off again at T s")
    parser.add_argument("--monitor-at", nargs=2, action="append", default=[], metavar=("T", "MODE"))
    args = parser.parse_args()
    engine = Engine()
    engine.start(EngineConfig(model=args.model, monitor="bypass" if args.bypass else "codec",
                              classic_paths=args.cycle_monitors is not None,
                              # As the window: ready to replay, which also loads the classic codecs'
                              # libraries at Start (turned on later, they open without that cost).
                              replay_ready=args.replay_at is not None or args.replay_after_stop
                              or args.classic_at is not None))
    print("streaming", file=sys.stderr, flush=True)
    started = time.monotonic()
    pending: list[tuple[float, Callable[[], object]]] = []
    if args.codebooks_at:
        pending.append((float(args.codebooks_at[0]), lambda: engine.request_codebooks(int(args.codebooks_at[1]))))
    if args.model_at:
        pending.append((float(args.model_at[0]), lambda: engine.request_codec(model=args.model_at[1])))
    if args.cycle_monitors:
        from app.audio.engine_config import MONITORS

        for i, mode in enumerate((*MONITORS, "codec")):
            pending.append(((i + 1) * args.cycle_monitors, functools.partial(setattr, engine, "monitor", mode)))
    if args.classic_at is not None:
        pending.append((args.classic_at, functools.partial(engine.set_classic_paths, True)))
    if args.classic_off_at is not None:
        pending.append((args.classic_off_at, functools.partial(engine.set_classic_paths, False)))
    for when, mode in args.monitor_at:
        pending.append((float(when), functools.partial(setattr, engine, "monitor", mode)))
    if args.replay_at is not None:
        pending.append((args.replay_at, functools.partial(engine.replay, seconds=args.replay_seconds)))
    pending.sort(key=lambda item: item[0])
    deadline = started + args.seconds
    while (time.monotonic() < deadline or engine.replaying) and engine.running:
        now = time.monotonic() - started
        while pending and now >= pending[0][0]:
            print(f"switch at {now:.2f}", file=sys.stderr, flush=True)
            pending.pop(0)[1]()
        for item in drain_events(engine):
            if item.kind == "model":  # the switch runs in the stream now
                print(f"landed {now:.2f}", file=sys.stderr, flush=True)
                if args.codebooks_after_model and running_codec(engine).num_codebooks != args.codebooks_after_model:
                    k = args.codebooks_after_model
                    pending.append((now + args.settle, functools.partial(engine.request_codebooks, k)))
                else:
                    deadline = time.monotonic() + args.settle
        time.sleep(0.05)
    summary = engine.stop()
    if args.replay_after_stop:
        print("stopped streaming", file=sys.stderr, flush=True)
        engine.replay(seconds=args.replay_seconds)
        give_up = time.monotonic() + REPLAY_TIMEOUT_S
        while engine.replaying and time.monotonic() < give_up:
            drain_events(engine)
            time.sleep(0.05)
        drain_events(engine)
    print(json.dumps(summary, default=str))
    return 0


def drain_events(engine: Engine) -> list[EngineEvent]:
    """The engine's events since the last call, each printed on stderr as "kind: message"."""
    events = [item for item in engine.queue.drain() if isinstance(item, EngineEvent)]
    for event in events:
        print(f"{event.kind}: {event.message}", file=sys.stderr, flush=True)
    return events


if __name__ == "__main__":
    sys.exit(main())

"""ESL decode + normalize + serialize vs greenswitch's decoder, on the real captures.

Both sides get the same events of the real FreeSWITCH captures, replayed in a
loop, one process, one core:
- ours: the ``text/event-json`` frames, read in 64 KB chunks -> ``ccod_fs_native.Normalizer.feed`` (native/:
  framing + decode + normalize + serialize in Rust, a byte-exact twin of the Python path) -> Kafka value bytes;
- native_pyframes: the Python FrameParser + ``normalize_json`` per frame body;
- python_path: the same frames -> FrameParser -> decode -> Python Normalizer -> serialize_event (the
  readable reference implementation, as "ours" was before the native core);
- native_only: ``normalize_json`` on the pre-framed bodies (no framing at all);
- stage rates of the Python path: decode only (frames + decode), normalize only (pre-decoded events), serialize only
  (the envelopes of one pass, counted per ESL event), and ``orjson_loads``: the bare JSON parse of the
  same bodies, the floor of any decoder that builds the header dict;
- greenswitch: ``ESLEvent`` on the ``text/event-plain`` form of the same events (its
  decoder cannot read JSON bodies), which is only decoding, no normalize or serialize.
Ends with ``RESULT esl_decode events_per_s=N vs_greenswitch=R``.
"""

from __future__ import annotations

from pathlib import Path

import ccod_fs_native
import greenswitch
import orjson

from benchmarks.common import interleaved
from ccod_fs.contract.events import serialize_event
from ccod_fs.esl.decode import decode_event, is_event
from ccod_fs.esl.frames import FrameParser, iter_frames
from ccod_fs.ingest.normalize import NormalizeError, Normalizer
from ccod_fs.ingest.subscriptions import is_subscribed

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "freeswitch"
STREAMS = ("inbound-queue", "queue-edge-cases")
ROUNDS = 15


def _subscribed_stream(fmt: str) -> tuple[bytes, int]:
    """The frames FreeSWITCH would send our subscription, concatenated, and their count."""
    out = bytearray()
    count = 0
    for stream in STREAMS:
        frames, _ = iter_frames((FIXTURES / f"esl-{fmt}-{stream}.raw").read_bytes())
        for frame in frames:
            if not is_event(frame):
                continue
            event = decode_event(frame)
            if is_subscribed(event.name, event.subclass):
                out += b"Content-Length: %d\nContent-Type: %s\n\n" % (len(frame.body), frame.content_type.encode())
                out += frame.body
                count += 1
    return bytes(out), count


def main() -> None:
    json_stream, n_json = _subscribed_stream("json")
    plain_stream, n_plain = _subscribed_stream("plain")
    plain_bodies = [f.body.decode() for f in iter_frames(plain_stream)[0]]
    chunks = [json_stream[i:i + 65536] for i in range(0, len(json_stream), 65536)]

    def ours() -> int:
        normalizer = ccod_fs_native.Normalizer(node="bench")
        feed = normalizer.feed
        n = 0
        for chunk in chunks:
            # One item per frame: [(tenant, serialized event)] (the Kafka values) or (frame, NormalizeError).
            n += len(feed(chunk))
        return n

    def native_python_framing() -> int:
        parser = FrameParser()
        normalize_json = ccod_fs_native.Normalizer(node="bench").normalize_json
        n = 0
        for chunk in chunks:
            for frame in parser.feed(chunk):
                try:
                    normalize_json(frame.body)
                except NormalizeError:
                    pass
                n += 1
        return n

    def python_path() -> int:
        parser = FrameParser()
        normalizer = Normalizer(node="bench")
        n = 0
        for chunk in chunks:
            for frame in parser.feed(chunk):
                try:
                    for item in normalizer.normalize(decode_event(frame)):
                        serialize_event(item)
                except NormalizeError:
                    pass
                n += 1
        return n

    def ours_decode_only() -> int:
        parser = FrameParser()
        n = 0
        for chunk in chunks:
            for frame in parser.feed(chunk):
                decode_event(frame)
                n += 1
        return n

    decoded = [decode_event(frame) for frame in iter_frames(json_stream)[0]]

    def ours_normalize_only() -> int:
        normalizer = Normalizer(node="bench")
        for event in decoded:
            try:
                normalizer.normalize(event)
            except NormalizeError:
                pass
        return len(decoded)

    envelopes = []
    normalizer = Normalizer(node="bench")
    for event in decoded:
        try:
            envelopes += normalizer.normalize(event)
        except NormalizeError:
            pass

    def ours_serialize_only() -> int:
        for item in envelopes:
            serialize_event(item)
        return len(decoded)  # per ESL event, as the other rates

    bodies = [frame.body for frame in iter_frames(json_stream)[0]]

    def native_only() -> int:
        normalize_json = ccod_fs_native.Normalizer(node="bench").normalize_json
        for body in bodies:
            try:
                normalize_json(body)
            except NormalizeError:
                pass
        return len(bodies)

    def orjson_only() -> int:
        for body in bodies:
            orjson.loads(body)
        return len(bodies)

    def theirs() -> int:
        for body in plain_bodies:
            greenswitch.esl.ESLEvent(body)
        return len(plain_bodies)

    # Many short alternating rounds: on a shared, loaded machine, load swings then hit every side alike.
    rates = interleaved({
        "ours": ours,
        "native_only": native_only,
        "native_pyframes": native_python_framing,
        "python_path": python_path,
        "decode_only": ours_decode_only,
        "normalize_only": ours_normalize_only,
        "serialize_only": ours_serialize_only,
        "orjson_loads": orjson_only,
        "greenswitch": theirs,
    }, rounds=ROUNDS, min_seconds=0.15)
    print(f"events per pass: json={n_json} plain={n_plain} (subscribed events of both captures); "
          f"{len(envelopes)} canonical events per pass")
    for name, value in rates.items():
        print(f"{name:>14}: {value:,.0f} events/s (median of {ROUNDS})")
    print("ours = native frames + decode/normalize/serialize; native_pyframes = the same with the Python"
          " FrameParser; native_only = normalize_json without any framing;"
          " python_path = frames + decode + normalize + serialize in Python; decode_only = frames + decode;"
          " normalize_only and"
          " serialize_only run on pre-decoded events / pre-normalized envelopes (rates per ESL event);"
          " orjson_loads = orjson.loads of the same bodies alone")
    ratio = rates["ours"] / rates["greenswitch"]
    print(f"RESULT esl_decode events_per_s={rates['ours']:.0f} vs_greenswitch={ratio:.1f}")


if __name__ == "__main__":
    main()

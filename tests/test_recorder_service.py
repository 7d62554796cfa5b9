"""The recorder service against the simulator: several keys, one capture, key failures, metrics."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections import Counter
from pathlib import Path

from recorder_helpers import CODES35
from recorder_helpers import all_secrets
from recorder_helpers import app_keys
from recorder_helpers import captures
from recorder_helpers import data_frames_by_key
from recorder_helpers import events_of
from recorder_helpers import header_of
from recorder_helpers import make_service
from recorder_helpers import messages_of
from recorder_helpers import sent_multiset
from recorder_helpers import wait_received_all
from sim_helpers import FEED_TRS
from sim_helpers import expected_delivery
from sim_helpers import make_tr_frames
from sim_helpers import run_async

from kis_adapter.protocol import Decoder
from kis_adapter.recorder.shards import plan_shards
from kis_adapter.simulator import KISSimulator


def _plan_frames() -> list[tuple[int, str]]:
    """Frames of every TR, one or several codes each (multi-record frames span keys), 4 rounds."""
    plan = []
    for round_ in range(4):
        for i, code in enumerate(CODES35):
            plan.append((FEED_TRS[(i + round_) % 3], [code]))
        for i in range(0, len(CODES35), 5):
            plan.append((FEED_TRS[i % 3], CODES35[i : i + 5]))
    return make_tr_frames(plan)


def test_three_keys_share_105_registrations_and_the_capture_holds_exactly_what_each_sent(
    tmp_path: Path, caplog
) -> None:
    """35 codes × 3 TRs over 3 keys: whole codes per key, one capture == every connection's messages."""
    caplog.set_level(logging.DEBUG)
    frames = _plan_frames()
    keys = app_keys(3)
    out = tmp_path / "out"

    async def main() -> tuple[KISSimulator, object]:
        sim = KISSimulator(
            frames,
            speed=0,
            credentials=_credentials_of(keys),
            pingpong_interval_secs=0.2,
            autostart_replay=False,
        )
        async with sim:
            service = make_service(sim, out, keys, codes=CODES35, tr_ids=FEED_TRS)
            task = asyncio.create_task(service.run())
            await sim.wait_subscriptions(105, timeout=20)
            sim.start_replay()
            await sim.wait_replay_done(timeout=20)
            await sim.wait_for(lambda: sim.stats.pongs_received >= 3, timeout=5)
            await wait_received_all(sim, service)
            service.request_stop("test done")
            await task
        return sim, service

    sim, service = run_async(main(), timeout=60)
    [path] = captures(out)
    header = header_of(path)
    plan = plan_shards(CODES35, FEED_TRS, 3)
    assert [len(shard["registrations"]) for shard in header["shards"]] == [36, 36, 33]
    assert [tuple(map(tuple, s["registrations"])) for s in header["shards"]] == list(plan.shards)
    for shard in header["shards"]:  # every TR of a code on one key
        codes = {code for _, code in shard["registrations"]}
        assert len(shard["registrations"]) == 3 * len(codes)
    assert Counter(messages_of(path)) == sent_multiset(sim)
    by_key = data_frames_by_key(path)
    sessions = {conn.app_key: conn for conn in sim.connections if conn.app_key}
    for key, shard in zip(keys, plan.shards, strict=True):
        conn = sessions[key.credentials.app_key]
        assert conn.sent_data_frames() == expected_delivery(frames, shard) == by_key[key.number]
    assert sim.stats.frames_missed == 0 and sim.stats.connections == 3
    opens = events_of(path, "open")
    assert sorted(event["key"] for event in opens) == [1, 2, 3]
    text = gzip.decompress(path.read_bytes()).decode()
    for secret in all_secrets(sim):
        assert secret not in text and secret not in caplog.text
    [window] = service.windows
    assert window.messages == sum(len(c.sent) for c in sim.connections) and window.gaps == 0


def _credentials_of(keys) -> dict[str, str]:
    return {k.credentials.app_key: k.credentials.app_secret for k in keys}


def test_one_key_in_use_elsewhere_stops_alone_and_the_capture_says_which_codes_were_lost_when(
    tmp_path: Path, caplog
) -> None:
    """Key 2 gets OPSP8996 (another client holds its session): keys 1, 3 record; events say what was lost."""
    from sim_helpers import Collector
    from sim_helpers import fast_config
    from sim_helpers import running

    from kis_adapter.session import KISSession

    caplog.set_level(logging.INFO)
    codes = CODES35[:9]
    frames = make_tr_frames([("H0ZFANC0", [code]) for code in codes * 5])
    keys = app_keys(3)
    out = tmp_path / "out"

    async def main():
        sim = KISSimulator(
            frames,
            speed=0,
            credentials=_credentials_of(keys),
            pingpong_interval_secs=None,
            autostart_replay=False,
        )
        async with sim:
            holder = KISSession(fast_config(sim), keys[1].credentials, Collector())
            holder.subscribe("H0ZFANC0", codes[0])
            async with running(holder):
                await holder.stats.wait_subscribed("H0ZFANC0", codes[0])
                service = make_service(sim, out, keys, codes=codes)
                task = asyncio.create_task(service.run())
                await sim.wait_for(lambda: sim.stats.refused_in_use == 1, timeout=10)
                await sim.wait_subscriptions(1 + 6, timeout=10)
                sim.start_replay()
                await sim.wait_replay_done(timeout=10)
                mine = [c for c in sim.connections if c.app_key != keys[1].credentials.app_key or c.id > 1]
                day = None
                async with asyncio.timeout(10):
                    while (day := service._day) is None or day.messages() < sum(len(c.sent) for c in mine):
                        await asyncio.sleep(0.01)
                service.request_stop("test done")
                await task
        return sim, service, mine

    sim, service, _mine = run_async(main(), timeout=60)
    [path] = captures(out)
    plan = plan_shards(codes, ["H0ZFANC0"], 3)
    lost = plan.codes(1)
    [failed] = events_of(path, "key_failed")
    assert failed["key"] == 2 and failed["codes"] == lost and "OPSP8996" in failed["reason"]
    [not_recorded] = events_of(path, "not_recorded")
    assert not_recorded["key"] == 2 and not_recorded["codes"] == lost
    assert not_recorded["start"] == failed["start"] <= failed["ts"] <= not_recorded["end"]
    by_key = data_frames_by_key(path)
    assert 2 not in by_key
    for index in (0, 2):
        conn = next(c for c in sim.connections if c.app_key == keys[index].credentials.app_key)
        assert by_key[index + 1] == expected_delivery(frames, plan.shards[index]) == conn.sent_data_frames()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "kis_adapter.recorder"]
    assert (
        len(errors) == 1
        and "key 2" in errors[0].getMessage()
        and "the other keys go on" in errors[0].getMessage()
    )
    assert service.windows[0].failed_keys == [2]
    assert service.metrics.keys["2"].failures == 1 and service.metrics.live["2"].failed


def test_a_key_whose_secret_is_rejected_stops_alone(tmp_path: Path) -> None:
    """HTTP 403 for key 1's approval: one request only, keys 2 and 3 record their codes."""
    codes = CODES35[:6]
    frames = make_tr_frames([("H0ZFANC0", [code]) for code in codes * 3])
    keys = app_keys(3)
    accepted = _credentials_of(keys)
    accepted[keys[0].credentials.app_key] = "not-the-secret"
    out = tmp_path / "out"

    async def main():
        sim = KISSimulator(
            frames, speed=0, credentials=accepted, pingpong_interval_secs=None, autostart_replay=False
        )
        async with sim:
            service = make_service(sim, out, keys, codes=codes)
            task = asyncio.create_task(service.run())
            await sim.wait_subscriptions(4, timeout=10)
            sim.start_replay()
            await sim.wait_replay_done(timeout=10)
            await wait_received_all(sim, service)
            async with asyncio.timeout(5):
                while not service._day.shards[0].failure:
                    await asyncio.sleep(0.01)
            service.request_stop("test done")
            await task
        return sim, service

    sim, _service = run_async(main(), timeout=60)
    [path] = captures(out)
    [failed] = events_of(path, "key_failed")
    assert failed["key"] == 1 and "rejected" in failed["reason"]
    assert sim.stats.approval_requests == 3  # one each: a rejected key is not retried
    assert sorted(data_frames_by_key(path)) == [2, 3]


def test_metrics_scraped_during_a_run_count_what_was_received_by_tr_and_key(tmp_path: Path) -> None:
    """/metrics mid-run: frames and records by TR, messages, up and registrations by key; no secret."""
    from recorder_helpers import metric
    from recorder_helpers import scrape

    from kis_adapter.recorder.metrics import MetricsServer
    from kis_adapter.recorder.metrics import RecorderMetrics

    codes = CODES35[:4]
    plan = [(tr, [code]) for code in codes for tr in FEED_TRS] * 3 + [("H0ZFCNT0", codes[:2])]
    frames = make_tr_frames(plan)
    frames.append((frames[-1][0] + 1, "0|H0ZFANC0|002|" + "^".join(["A10612", "084000"])))  # count_mismatch
    keys = app_keys(2)
    out = tmp_path / "out"
    metrics = RecorderMetrics()
    server = MetricsServer(metrics, 0)

    async def main():
        sim = KISSimulator(
            frames,
            speed=0,
            credentials=_credentials_of(keys),
            pingpong_interval_secs=None,
            autostart_replay=False,
        )
        async with sim:
            service = make_service(sim, out, keys, codes=codes, tr_ids=FEED_TRS, metrics=metrics)
            task = asyncio.create_task(service.run())
            await sim.wait_subscriptions(12, timeout=10)
            sim.start_replay()
            await sim.wait_replay_done(timeout=10)
            await wait_received_all(sim, service)
            service._day.refresh()
            text = await asyncio.to_thread(scrape, server.url)
            service.request_stop("test done")
            await task
            after = await asyncio.to_thread(scrape, server.url)
        return sim, text, after

    try:
        sim, text, after = run_async(main(), timeout=60)
    finally:
        server.close()
    decoder = Decoder()  # the reference: the tally must count as the decoder classifies
    good: Counter[str] = Counter()
    records: Counter[str] = Counter()
    for text_ in (t for conn in sim.connections for t in conn.sent_data_frames()):
        decoded = decoder.decode(0, text_)
        if decoded.rows:
            good[decoded.tr_id] += 1
            records[decoded.tr_id] += len(decoded.rows)
    assert decoder.stats.skipped and decoder.stats.skipped_total == 1
    for tr in FEED_TRS:
        assert metric(text, "kis_recorder_frames_total", tr=tr) == good[tr] > 0
        assert metric(text, "kis_recorder_records_total", tr=tr) == records[tr]
    for reason, n in decoder.stats.skipped.items():
        assert metric(text, "kis_recorder_skips_total", reason=reason) == n
    assert metric(text, "kis_recorder_control_messages_total", kind="ack") == 12
    by_conn = {c.app_key: len(c.sent) for c in sim.connections}
    for key in keys:
        label = key.label
        assert metric(text, "kis_recorder_messages_total", key=label) == by_conn[key.credentials.app_key]
        assert metric(text, "kis_recorder_up", key=label) == 1
        assert metric(text, "kis_recorder_registrations", key=label, state="subscribed") == 6
        assert metric(text, "kis_recorder_reconnects_total", key=label) == 0
        assert metric(text, "kis_recorder_gaps_total", key=label) == 0
        age = metric(text, "kis_recorder_last_message_age_seconds", key=label)
        assert age is not None and 0 <= age < 30
        assert metric(after, "kis_recorder_up", key=label) == 0
    assert metric(text, "kis_recorder_recording") == 1 and metric(after, "kis_recorder_recording") == 0
    assert metric(text, "kis_recorder_codes") == 4
    [path] = captures(out)
    assert (
        0
        < metric(text, "kis_recorder_capture_bytes_total")
        <= metric(after, "kis_recorder_capture_bytes_total")
    )
    assert metric(after, "kis_recorder_capture_bytes_total") == path.stat().st_size
    assert all(line.startswith(("#", "kis_recorder_")) for line in text.splitlines() if line)
    for secret in all_secrets(sim):
        assert secret not in text

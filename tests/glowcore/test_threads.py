"""The thread policy of interactive decoding: measured per machine, overridable."""

import pytest
import torch

from glowcore.base import threads
from glowcore.base.threads import ALL_CORES_GAIN, TOLERANCE, calibrate, candidates, choose, env_threads

from .latent_helpers import untrained_model


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_candidates_are_valid_counts_for_any_machine():
    for cores in (1, 2, 3, 4, 16, 64):
        c = candidates(cores)
        assert c == sorted(set(c)) and c[0] == 1 and c[-1] == min(cores, threads.MAX_THREADS)
        assert all(1 <= n <= cores for n in c)
    assert candidates(2) == [1, 2]


def test_choice_prefers_fewer_threads_and_leaves_the_gui_a_core():
    assert choose({1: 20.0, 2: 20.0 * (1 + TOLERANCE / 2)}, cores=2) == 1  # no faster: fewer
    assert choose({1: 20.0, 2: 20.0 * (1 - ALL_CORES_GAIN / 2)}, cores=2) == 1  # a little faster: keep the GUI's core
    assert choose({1: 20.0, 2: 20.0 * (1 - 2 * ALL_CORES_GAIN)}, cores=2) == 2  # much faster: all cores
    assert choose({1: 30.0, 2: 20.0, 3: 19.5, 4: 12.0}, cores=4) == 4
    assert choose({1: 30.0, 2: 20.0, 3: 19.5, 4: 16.0}, cores=4) == 2
    assert choose({1: 30.0, 2: 20.0, 3: 19.5, 4: 14.0}, cores=4) == 4
    assert choose({1: 5.0}, cores=1) == 1
    with pytest.raises(ValueError):
        choose({}, cores=2)


def test_calibration_times_each_candidate_and_sets_the_choice(monkeypatch):
    model = untrained_model(seed=1)
    lat = model.sample_latent(1, 0.7, seed=0)
    seen = []

    def decode():
        seen.append(torch.get_num_threads())
        with torch.inference_mode():
            model.decode(lat)

    policy = calibrate(decode, counts=[1, 2], rounds=2, cores=2)
    assert policy.source == "calibrated" and policy.threads in (1, 2)
    assert set(policy.timings_ms) == {1, 2} and all(t > 0 for t in policy.timings_ms.values())
    assert seen.count(1) == seen.count(2) == 3  # a warm-up and two rounds each
    assert torch.get_num_threads() == policy.threads == choose(policy.timings_ms, cores=2)
    assert "calibrated" in policy.describe()
    # the choice follows the measurement: one count made slow is never picked
    slow = {1: 0.05, 2: 0.0}

    def rigged():
        import time

        time.sleep(slow[torch.get_num_threads()])

    assert calibrate(rigged, counts=[1, 2], rounds=2, cores=4).threads == 2
    slow.update({1: 0.0, 2: 0.05})
    assert calibrate(rigged, counts=[1, 2], rounds=2, cores=4).threads == 1


def test_glow_threads_overrides(monkeypatch):
    for text, expected in (("3", 3), (" 2 ", 2), ("", None), ("0", None), ("-1", None), ("many", None)):
        monkeypatch.setenv("GLOW_THREADS", text)
        assert env_threads() == expected
    monkeypatch.delenv("GLOW_THREADS")
    assert env_threads() is None


def test_bf16_networks_are_kept_only_when_clearly_faster():
    assert threads.choose_precision({"fast": 10.0, "exact": 12.0})
    assert not threads.choose_precision({"fast": 11.9, "exact": 12.0})  # under FAST_MIN_GAIN: exact pixels win
    assert not threads.choose_precision({"fast": 14.0, "exact": 12.0})
    edge = 12.0 * (1 - threads.FAST_MIN_GAIN)
    assert threads.choose_precision({"fast": edge, "exact": 12.0})


@pytest.mark.parametrize("slow", [True, False])
def test_precision_calibration_times_both_paths_and_picks_the_faster(slow):
    import time

    calls: list[bool] = []

    def decode(fast: bool) -> None:
        calls.append(fast)
        if fast == slow:
            time.sleep(0.02)  # this path is 20 ms slower than the other, whatever the machine's load

    fast, ms = threads.calibrate_precision(decode, rounds=2)
    assert fast is (not slow)
    assert set(ms) == {"fast", "exact"} and calls.count(True) == calls.count(False) == 3  # a warm-up and two rounds
    assert ms["fast" if slow else "exact"] >= 20.0

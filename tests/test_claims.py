"""Compute-once claims: one computation among many waiters, dead owners' claims expire, live ones are waited for."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from bsp_common.claims import claim_owner, compute_once


def _result_file(tmp_path):
    result = tmp_path / "result.txt"
    return result, (lambda: result.is_file() and result.read_text())


def test_many_threads_compute_once_and_all_get_the_result(tmp_path):
    result, done = _result_file(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.3)
        result.write_text("42")

    answers = []

    def worker():
        answers.append(compute_once(tmp_path / "r.claim", done, compute, poll_s=0.02))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1] and answers == ["42"] * 4
    assert not (tmp_path / "r.claim").exists()


def test_a_dead_owners_claim_is_taken_over_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    claim = tmp_path / "r.claim"
    claim.write_text(json.dumps({"host": os.uname().nodename, "pid": pid, "started": time.time()}))
    result, done = _result_file(tmp_path)
    start = time.monotonic()
    assert compute_once(claim, done, lambda: result.write_text("mine"), poll_s=0.05, stale_s=3600) == "mine"
    assert time.monotonic() - start < 5  # not the hour the heartbeat rule would wait


def test_another_hosts_claim_is_waited_for_while_its_heartbeat_is_fresh_and_broken_when_stale(tmp_path):
    claim = tmp_path / "r.claim"
    claim.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": time.time()}))
    result, done = _result_file(tmp_path)
    waited = []

    def finish_elsewhere():  # the other host finishes while we wait
        time.sleep(0.4)
        result.write_text("theirs")
        claim.unlink()

    thread = threading.Thread(target=finish_elsewhere)
    thread.start()
    answer = compute_once(claim, done, lambda: result.write_text("mine"), poll_s=0.05, stale_s=30,
                          on_wait=waited.append)  # fmt: skip
    thread.join()
    assert answer == "theirs" and waited == [{"host": "elsewhere", "pid": 1, "started": waited[0]["started"]}]

    result.unlink()
    claim.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": 0}))
    os.utime(claim, (time.time() - 120, time.time() - 120))  # no heartbeat for two minutes
    assert compute_once(claim, done, lambda: result.write_text("mine"), poll_s=0.05, stale_s=60) == "mine"
    assert claim_owner(claim) is None and not list(tmp_path.glob("*.expired-*"))


def test_the_owner_heartbeat_keeps_a_long_computation_claimed(tmp_path):
    result, done = _result_file(tmp_path)
    claim = tmp_path / "r.claim"
    ages = []

    def compute():
        for _ in range(5):
            time.sleep(0.1)
            ages.append(time.time() - claim.stat().st_mtime)
        result.write_text("done")

    compute_once(claim, done, compute, heartbeat_s=0.05)
    assert max(ages) < 0.3  # touched every 50 ms while the computation ran 500 ms


def test_a_claim_stamped_in_the_future_expires_on_the_waiters_own_clock(tmp_path):
    claim = tmp_path / "r.claim"
    claim.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": time.time() + 3600}))
    os.utime(claim, (time.time() + 3600, time.time() + 3600))  # clock skew, or forged
    result, done = _result_file(tmp_path)
    start = time.monotonic()
    assert compute_once(claim, done, lambda: result.write_text("mine"), poll_s=0.05, stale_s=0.5) == "mine"
    assert time.monotonic() - start < 10 and not list(tmp_path.glob("*.expired-*"))


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"host": 5, "pid": "x", "started": null}', "[" * 100_000])
def test_a_claim_without_a_valid_owner_record_has_no_owner_and_expires_by_heartbeat(tmp_path, content):
    claim = tmp_path / "r.claim"
    claim.write_text(content)
    assert claim_owner(claim) == {}
    os.utime(claim, (time.time() - 120, time.time() - 120))
    result, done = _result_file(tmp_path)
    assert compute_once(claim, done, lambda: result.write_text("mine"), poll_s=0.05, stale_s=60) == "mine"


def test_a_directory_in_place_of_a_claim_is_refused_by_name(tmp_path):
    (tmp_path / "r.claim").mkdir()
    result, done = _result_file(tmp_path)
    with pytest.raises(ValueError, match=r"r\.claim: is a directory, not a bsp claim file"):
        compute_once(tmp_path / "r.claim", done, lambda: result.write_text("mine"), poll_s=0.05)
    assert (tmp_path / "r.claim").is_dir()  # not bsp's to remove


def test_a_claim_set_refuses_a_directory_in_place_of_a_claim(tmp_path):
    from bsp_common.claims import ClaimSet

    (tmp_path / "p1.claim").mkdir()
    claims = ClaimSet(tmp_path)
    with pytest.raises(ValueError, match=r"p1\.claim: is a directory, not a bsp claim file"):
        claims.take("p1")
    assert claims.take("p2") and (tmp_path / "p1.claim").is_dir()
    claims.close()

"""Terminal progress (tqdm): a live bar on a terminal, plain throttled lines in logs."""

from __future__ import annotations

import io

from glowcore.base.progress import ConsoleProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_throttled_and_the_last_one() -> None:
    log = io.StringIO()
    bar = ConsoleProgress("bits/dim", stream=log, unit="images")
    for done in range(0, 101, 10):
        bar(done, 100, f"at {done}")
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 2  # the first, then nothing for 5 s but the final line
    assert lines[0].startswith("bits/dim") and "0/100" in lines[0]
    assert "100/100" in lines[-1] and "images" in lines[-1] and "at 100" in lines[-1]
    assert "images/s" in lines[-1] and "-" not in lines[-1].split("[")[1]  # a rate and times, none negative


def test_a_terminal_gets_a_live_bar_and_messages_above_it() -> None:
    term = Terminal()
    bar = ConsoleProgress("train", stream=term, unit="steps", interval=0.0)
    bar(1, 0, "estimating")  # total unknown yet
    bar(5, 40, "step 5")     # an estimate arrives
    bar.write("step 5: validation 3.21 bits/dim")
    bar(20, 20, "step 20")   # the estimate shrinks; done
    out = term.getvalue()
    assert "\r" in out
    assert "step 5: validation 3.21 bits/dim\n" in out
    assert "5/40" in out and "20/20" in out and "steps" in out
    assert out.endswith("\n")  # the finished bar left its line
    assert bar._bar is None

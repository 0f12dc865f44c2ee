"""Progress lines: their format, the step timings they share with run.json, and when the CLI
shows them (terminal, --quiet, --progress, EVAL_PROGRESS)."""

import io

import pytest

from eval_pipelines.progress import PROGRESS_ENV, SILENT, Progress, choose


class Clock:
    """A hand-driven clock: each test says how many seconds every step takes."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_a_step_prints_its_start_and_its_duration_after_the_elapsed_time():
    clock, stream, timings = Clock(), io.StringIO(), {}
    progress = Progress(stream, clock=clock)
    clock.now += 1.2  # spec loading before the first step
    with progress.step("input checks", timings, "validation_s"):
        clock.now += 2.1
    with progress.step("aggregate query", timings, "aggregate_s"):
        clock.now += 12.0
    assert stream.getvalue().splitlines() == [
        "[  1.2s] input checks ...",
        "[  3.3s] input checks done in 2.1s",
        "[  3.3s] aggregate query ...",
        "[ 15.3s] aggregate query done in 12.0s",
    ]
    assert timings == pytest.approx({"validation_s": 2.1, "aggregate_s": 12.0})


def test_a_failed_step_says_so_records_no_timing_and_reraises():
    clock, stream, timings = Clock(), io.StringIO(), {}
    progress = Progress(stream, clock=clock)
    with pytest.raises(KeyError), progress.step("drift", timings, "drift_s"):
        clock.now += 0.5
        raise KeyError("amount")
    assert stream.getvalue().splitlines() == [
        "[  0.0s] drift ...",
        "[  0.5s] drift failed after 0.5s",
    ]
    assert timings == {}


def test_silent_progress_prints_nothing_but_still_times(capsys):
    timings: dict[str, float] = {}
    with SILENT.step("metrics and bootstrap intervals", timings, "metrics_s"):
        pass
    assert set(timings) == {"metrics_s"} and timings["metrics_s"] >= 0
    assert not SILENT.reporting
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("tty", "quiet", "forced", "env", "reporting"),
    [
        (True, False, False, None, True),  # a terminal: on by default
        (False, False, False, None, False),  # CI log or redirect: off by default
        (True, True, False, None, False),  # --quiet
        (False, False, True, None, True),  # --progress
        (False, False, False, "1", True),  # EVAL_PROGRESS=1
        (False, False, False, "yes", True),
        (True, False, False, "0", False),  # EVAL_PROGRESS=0 silences a terminal
        (True, False, False, "off", False),
        (False, True, False, "1", False),  # --quiet wins over the variable
        (True, False, False, "maybe", True),  # an unknown value: as if unset
        (False, False, False, "maybe", False),
    ],
)
def test_when_the_cli_reports(tty, quiet, forced, env, reporting):
    stream = Stream(tty)
    environ = {} if env is None else {PROGRESS_ENV: env}
    progress = choose(stream, quiet=quiet, forced=forced, environ=environ)
    assert progress.reporting is reporting
    with progress.step("drift"):
        pass
    assert bool(stream.getvalue()) is reporting

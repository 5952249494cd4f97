"""The training's progress display: tqdm on a terminal, plain lines in a log file or pipe."""

import io

import pytest

from alae_fast.training.progress import _PlainProgress, _progress


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_plain_progress_writes_one_line_per_interval_and_at_close():
    clock, out = _Clock(), io.StringIO()
    p = _PlainProgress(total=68000, initial=0, file=out, every_s=30.0, clock=clock)
    for _ in range(100):  # 100 updates within 10 s: nothing written yet
        clock.t += 0.1
        p.update(16)
    assert out.getvalue() == ""
    p.set_postfix_str("img/s 160 lod 1")
    clock.t += 25.0  # 35 s after the start
    p.update(16)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()
    # 1616 images in 35 s: 46.2 img/s, (68000 - 1616) / 46.17 = 1437.8 s left
    assert lines[0] == "1.6/68.0 kimg (2%), 35 s, 1438 s left: img/s 160 lod 1"
    p.close()
    p.close()  # a second close writes nothing more
    assert len(out.getvalue().splitlines()) == 2


def test_plain_progress_after_resume_counts_rate_from_its_start():
    clock, out = _Clock(), io.StringIO()
    p = _PlainProgress(total=10000, initial=8000, file=out, every_s=30.0, clock=clock)
    clock.t += 40.0
    p.update(2000)
    assert out.getvalue().splitlines() == ["10.0/10.0 kimg (100%), 40 s"]


def test_plain_progress_of_a_short_run_reads_in_images():
    # under 10 kimg, tenths of a kimg would print a 100-image run as 0.0/0.1
    clock, out = _Clock(), io.StringIO()
    p = _PlainProgress(total=100, initial=0, file=out, every_s=30.0, clock=clock)
    clock.t += 31.0
    p.update(16)
    assert out.getvalue().splitlines() == ["0.016/0.100 kimg (16%), 31 s, 163 s left"]


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_chooses_by_terminal():
    assert _progress(100, 0, enabled=False) is None
    assert isinstance(_progress(100, 0, enabled=True, file=io.StringIO()), _PlainProgress)
    tqdm = pytest.importorskip("tqdm")
    bar = _progress(100, 0, enabled=True, file=_Tty())
    try:
        assert isinstance(bar, tqdm.tqdm)
    finally:
        bar.close()

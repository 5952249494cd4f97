"""alae_fast.training I/O: atomic checkpoints (kill -9 safety), RNG state, PNG grids, loss curves."""

import io
import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

# Pillow is a core dependency, but the lent GPU machines' python lacks it (their CUDA test run
# must still collect): without it this module is skipped, not a collection error.
Image = pytest.importorskip("PIL.Image")

from alae_fast.training import checkpoint as ck
from alae_fast.training.checkpoint import (capture_rng_state, find_latest_checkpoint, list_checkpoints,
                                           load_checkpoint, restore_rng_state, save_checkpoint)
from alae_fast.inference.pictures import make_grid, save_image_grid, save_pairs_grid
from alae_fast.inference.plots import plot_loss_curves, read_jsonl

def _state(step: int, mib: float = 0.05) -> dict:
    n = int(mib * (1 << 20) / 4)
    return {"step": step, "weights": torch.full((n,), float(step)), "meta": {"lod": step % 3, "name": "x"}}


def _check_intact(directory, step=None):
    """Every complete checkpoint loads and holds what was saved under its step."""
    ckpts = list_checkpoints(directory)
    for s, p in ckpts:
        obj = load_checkpoint(p)
        assert obj["step"] == s and bool((obj["weights"] == float(s)).all()), p
    latest = find_latest_checkpoint(directory)
    assert latest is not None
    if step is not None:
        assert latest[1]["step"] == step
    return latest


# ---------------------------------------------------------------------------- basic behaviour

def test_save_keeps_last_k_and_finds_latest(tmp_path):
    assert find_latest_checkpoint(tmp_path) is None and find_latest_checkpoint(tmp_path / "nope") is None
    for step in range(6):
        p = save_checkpoint(_state(step), tmp_path / "ck", step, keep=3)
        assert p.name == f"ckpt-{step:010d}.pt"
    assert [s for s, _ in list_checkpoints(tmp_path / "ck")] == [3, 4, 5]
    path, obj = _check_intact(tmp_path / "ck", step=5)
    assert obj["meta"] == {"lod": 2, "name": "x"}
    save_checkpoint(_state(5) | {"again": True}, tmp_path / "ck", 5, keep=3)  # same step: replaced
    assert find_latest_checkpoint(tmp_path / "ck")[1]["again"] is True
    assert not [p for p in (tmp_path / "ck").iterdir() if ".tmp-" in p.name]
    save_checkpoint(_state(1), tmp_path / "other", 1, prefix="ema")
    assert list_checkpoints(tmp_path / "other") == [] and len(list_checkpoints(tmp_path / "other", "ema")) == 1


def test_unreadable_checkpoint_warning_says_why_in_one_line(tmp_path):
    """An empty file (torch raises a bare EOFError) is named as one; another damage keeps the
    error's type and only the first line of torch's long unpickling message."""
    save_checkpoint(_state(1), tmp_path, 1)
    (tmp_path / "ckpt-0000000002.pt").write_bytes(b"")
    with pytest.warns(RuntimeWarning) as got:
        path, obj = find_latest_checkpoint(tmp_path)
    assert obj["step"] == 1 and path.name == "ckpt-0000000001.pt"
    (msg,) = [str(w.message) for w in got]
    assert msg == f"checkpoint {tmp_path / 'ckpt-0000000002.pt'} is unreadable (an empty file: 0 bytes); trying an older one"
    (tmp_path / "ckpt-0000000002.pt").write_bytes(b"not a zip archive, not a pickle")
    with pytest.warns(RuntimeWarning) as got:
        find_latest_checkpoint(tmp_path)
    (msg,) = [str(w.message) for w in got]
    assert "\n" not in msg and "0 bytes" not in msg and "Error" in msg.split("(", 1)[1], msg


def test_corrupt_newest_falls_back_and_stale_temps_are_removed(tmp_path):
    for step in (1, 2):
        save_checkpoint(_state(step), tmp_path, step)
    good = (tmp_path / "ckpt-0000000002.pt").read_bytes()
    (tmp_path / "ckpt-0000000003.pt").write_bytes(good[: len(good) // 2])  # e.g. a half-copied file
    with pytest.warns(RuntimeWarning, match=r"ckpt-0000000003.pt is unreadable \(truncated or corrupt: its zip "
                                            r"archive is incomplete\); trying an older one$"):
        path, obj = find_latest_checkpoint(tmp_path)
    assert obj["step"] == 2
    stale = tmp_path / ".ckpt-0000000009.pt.tmp-12345"
    stale.write_bytes(b"partial")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1, 2, 3]  # a temp file is never a checkpoint
    save_checkpoint(_state(4), tmp_path, 4, keep=2)
    assert not stale.exists()
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]


def test_failed_save_leaves_no_partial_file(tmp_path):
    save_checkpoint(_state(1), tmp_path, 1)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint({"x": Unpicklable()}, tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0000000001.pt"]


def test_weights_only_loading_refuses_arbitrary_objects(tmp_path):
    p = save_checkpoint({"obj": io.StringIO("x")}, tmp_path, 1)
    with pytest.raises(Exception):
        load_checkpoint(p)
    assert isinstance(load_checkpoint(p, weights_only=False)["obj"], io.StringIO)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


@pytest.mark.parametrize("kwargs,match", [(dict(step=-1), "step"), (dict(step=1.5), "step"), (dict(keep=0), "keep"),
                                          (dict(prefix="a/b"), "prefix"), (dict(prefix=".x"), "prefix")])
def test_save_argument_errors(tmp_path, kwargs, match):
    args = {"step": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        save_checkpoint({}, tmp_path, **args)


# ---------------------------------------------------------------------------- kill -9

# The writer runs in a fresh Python process (not a fork: a forked child of a process that
# used torch's thread pool can hang) that loads checkpoint.py by path, so it starts fast.
_CHILD = r"""
import importlib.util, io, os, signal, sys
import torch
spec = importlib.util.spec_from_file_location("ck_under_test", sys.argv[1])
ck = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ck)
directory, mode, start = sys.argv[2], sys.argv[3], int(sys.argv[4])

def state(step, mib):
    return {"step": step, "weights": torch.full((int(mib * (1 << 20) / 4),), float(step))}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "forever":
    step = start
    while True:
        ck.save_checkpoint(state(step, 8), directory, step, keep=2)
        step += 1

for step in (1, 2, 3):
    ck.save_checkpoint(state(step, 2), directory, step, keep=2)
real_save, real_replace = torch.save, os.replace
if mode == "mid-write":
    def half_save(obj, f):
        buf = io.BytesIO()
        real_save(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        die()
    torch.save = half_save
elif mode == "before-fsync":
    os.fsync = lambda fd: die()
elif mode == "after-rename":
    def replace_then_die(a, b):
        real_replace(a, b)
        die()
    os.replace = replace_then_die
elif mode == "during-cleanup":
    ck._cleanup = lambda d, prefix, keep: die()
ck.save_checkpoint(state(4, 2), directory, 4, keep=2)
sys.exit(3)  # not reached: the save above must have killed this process
"""


def _spawn(tmp_path, directory, mode, start=0):
    # Written once: rewriting it for each child truncates the file while an earlier child's
    # interpreter may still be reading it, and that child then runs an empty script (exit 0).
    script = tmp_path / "writer.py"
    if not script.exists():
        script.write_text(_CHILD)
    return subprocess.Popen([sys.executable, str(script), ck.__file__, str(directory), mode, str(start)])


_PHASES = {"mid-write": 3, "before-fsync": 3, "after-rename": 4, "during-cleanup": 4}


def test_kill_at_each_phase_of_a_save_leaves_a_loadable_latest(tmp_path):
    procs = {ph: _spawn(tmp_path, tmp_path / ph, ph) for ph in _PHASES}  # run side by side
    for phase, proc in procs.items():
        assert proc.wait(120) == -signal.SIGKILL, phase
    for phase, latest in _PHASES.items():
        d = tmp_path / phase
        _check_intact(d, step=latest)
        if phase in ("mid-write", "before-fsync"):
            assert [p for p in d.iterdir() if ".tmp-" in p.name], "the kill should leave a partial temp file"
        save_checkpoint(_state(5), d, 5, keep=2)  # the next save cleans up after the dead writer
        assert not [p for p in d.iterdir() if ".tmp-" in p.name]
        assert [s for s, _ in list_checkpoints(d)] == [latest, 5]


def test_sigkill_at_random_moments_while_saving_big_checkpoints(tmp_path):
    rng = random.Random(0)
    d = tmp_path / "run"
    start = 0
    for _ in range(3):
        proc = _spawn(tmp_path, d, "forever", start)
        deadline = time.time() + 60
        while not list_checkpoints(d) or list_checkpoints(d)[-1][0] < start + 1:
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        path, obj = _check_intact(d)
        assert obj["step"] >= start + 1
        start = obj["step"] + 1  # resume numbering after the latest loadable one


# ---------------------------------------------------------------------------- RNG state

def _draw(gen):
    return (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gen)),
            float(np.random.randn()), random.gauss(0, 1))


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    gen = torch.Generator().manual_seed(123)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    _draw(gen)
    random.gauss(0, 1)  # leaves a cached gauss value in Python's state
    np.random.randn()  # and one in NumPy's
    state = capture_rng_state({"data": gen})
    expected = [_draw(gen) for _ in range(3)]
    p = save_checkpoint({"rng": state}, tmp_path, 1)
    loaded = load_checkpoint(p)["rng"]  # weights_only=True
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    gen2 = torch.Generator().manual_seed(7)
    restore_rng_state(loaded, {"data": gen2})
    assert [_draw(gen2) for _ in range(3)] == expected
    with pytest.raises(KeyError, match="other"):
        restore_rng_state(loaded, {"other": gen2})


# ---------------------------------------------------------------------------- images

def test_make_grid_layout_and_value_mapping():
    imgs = torch.full((5, 1, 2, 3), -1.0)
    imgs[1] = 1.0
    imgs[2] = 0.0
    imgs[3, 0, 1, 2] = 0.5
    imgs[4] = 7.0  # clamped to 1
    g = make_grid(imgs, nrow=2, padding=1, pad_value=0.0)
    assert g.shape == (1 + 3 * 3, 1 + 2 * 4, 1) and g.dtype == np.uint8
    assert (g[0] == 128).all() and (g[:, 0] == 128).all()  # padding
    assert (g[1:3, 1:4] == 0).all() and (g[1:3, 5:8] == 255).all()  # images 0 and 1 in row 0
    assert (g[4:6, 1:4] == 128).all()  # image 2: 0.0 -> 127.5 -> 128
    assert g[5, 5 + 2, 0] == 191  # image 3 pixel (1, 2): 0.5 -> 191.25 -> 191
    assert (g[7:9, 1:4] == 255).all() and (g[7:9, 5:8] == 128).all()  # image 4, then empty slot
    with pytest.raises(ValueError, match="images"):
        make_grid(torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        make_grid(torch.full((1, 1, 2, 2), float("nan")))


def test_save_grids_as_png(tmp_path):
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(6, 3, 8, 8, generator=g) * 2 - 1
    p = save_image_grid(rgb, tmp_path / "sub" / "rgb.png", nrow=3)
    back = np.asarray(Image.open(p))
    assert Image.open(p).mode == "RGB" and np.array_equal(back, make_grid(rgb, nrow=3))
    grey = rgb[:, :1]
    p = save_image_grid(grey, tmp_path / "grey.png", scale=2)
    img = Image.open(p)
    assert img.mode == "L"
    ref = make_grid(grey)[..., 0]
    assert np.array_equal(np.asarray(img), ref.repeat(2, 0).repeat(2, 1))
    recon = -grey
    p = save_pairs_grid(grey, recon, tmp_path / "pairs.png", pairs_per_row=3, padding=0, titles=False)
    arr = np.asarray(Image.open(p))
    assert arr.shape == (2 * 8, 6 * 8)
    expect = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(arr[8:16, 16:24], expect(grey[4, 0]))  # pair 4: row 1, column 2*1
    assert np.array_equal(arr[8:16, 24:32], expect(recon[4, 0]))
    assert not [q for q in tmp_path.iterdir() if ".tmp-" in q.name]
    with pytest.raises(ValueError, match="reconstructions"):
        save_pairs_grid(grey, recon[:2], tmp_path / "x.png")


def test_loss_curve_png_from_jsonl(tmp_path):
    log = tmp_path / "log.jsonl"
    with open(log, "w") as f:
        for i in range(120):
            f.write(json.dumps({"kimg": i * 0.032, "lod": i // 50, "loss_d": 1.0 / (1 + i), "loss_g": 0.5,
                                "loss_ae": float(np.sin(i / 9)), "images_per_s": 100 + i, "tag": "x"}) + "\n")
        f.write("\n")
        f.write('{"kimg": 3.9, "loss_d"')  # cut short by a kill
    records, bad = read_jsonl(log)
    assert len(records) == 120 and bad == 1
    p = plot_loss_curves(log, tmp_path / "loss.png", width=600, panel_height=150, smooth=5)
    img = np.asarray(Image.open(p).convert("RGB"))
    assert img.shape == (4 * 150 + 24, 600, 3)  # four numeric quantities: one panel each
    blue = (img == np.array([31, 119, 180])).all(-1)  # first panel's line colour
    rows = np.nonzero(blue.any(1))[0]
    assert blue.sum() > 200 and rows.min() >= 0 and rows.max() < 150  # drawn, inside panel 1
    red = (img == np.array([214, 39, 40])).all(-1)
    assert red.sum() > 100 and np.nonzero(red.any(1))[0].min() >= 150
    plot_loss_curves(log, tmp_path / "one.png", keys=["loss_ae"], x_key="kimg")
    assert Image.open(tmp_path / "one.png").size == (800, 180 + 24)
    (tmp_path / "empty.jsonl").write_text('{"tag": "x"}\n')
    with pytest.raises(ValueError, match="no numeric quantity"):
        plot_loss_curves(tmp_path / "empty.jsonl", tmp_path / "e.png")

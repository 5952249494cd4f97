"""Opening checkpoints and using a loaded run: damaged files (stored CRC-32s), devices torch
lacks, the run's noise mode as the methods' default, grey images for a colour run, mixed dtypes
in interpolation, noise tensors with NaN, and the wording of a few refusals."""

import random
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

Image = pytest.importorskip("PIL.Image")  # the CLI's image commands need Pillow

import alae_fast
from alae_fast.cli import main
from alae_fast.errors import UserError
from alae_fast.inference import loading
from alae_fast.inference.loading import CHECKPOINT_FORMAT, check_device
from alae_fast.inference.sampling import generate_seeds, interpolate_latents, sample_images
from alae_fast.models import build_model
from alae_fast.models.official_io import OfficialCheckpointError
from alae_fast.models.presets import DIGITS_32
from alae_fast.training.checkpoint import (checkpoint_damage, find_latest_checkpoint, list_checkpoints,
                                           load_checkpoint, save_checkpoint)
from alae_fast.training.schedule import schedule_from_config
from alae_fast_tests_support import TINY, pixels

pytestmark = pytest.mark.usefixtures("one_thread")


def _write_run(path, config, images_seen=None, seed=0):
    """An alae_fast checkpoint of ``config`` whose G noise weights are not 0 (a fresh model's
    are, and would hide the noise mode), at ``images_seen`` (default: the schedule's end)."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "noise_weight" in name:
                p.copy_(torch.randn(p.shape, generator=g))
    schedule = schedule_from_config(config)
    if images_seen is None:
        images_seen = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    state = {"format": CHECKPOINT_FORMAT, "model_config": config.to_dict(), "schedule": schedule.to_dict(),
             "setup": "test", "trainer": {"ema": {"module": model.state_dict()}, "images_seen": images_seen}}
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def grey_ckpt(tmp_path_factory):
    return _write_run(tmp_path_factory.mktemp("grey") / "ckpt-grey.pt", DIGITS_32)


@pytest.fixture(scope="module")
def colour_ckpts(tmp_path_factory):
    """A colour run fully grown, and the same run at a lower level (8 px, faded in half-way)."""
    d = tmp_path_factory.mktemp("colour")
    config = DIGITS_32.replace(channels=3)
    schedule = schedule_from_config(config)
    growing = schedule.images_at(0) + schedule.images_at(1) // 4
    assert schedule.phase(growing).resolution < schedule.resolution
    return _write_run(d / "ckpt-full.pt", config), _write_run(d / "ckpt-growing.pt", config, images_seen=growing)


def _images(n, c, r, seed=0, dtype=torch.float32):
    return pixels(n, c, r, r, dtype=dtype, seed=seed)


# --- 1. damaged checkpoints ---------------------------------------------------------------------------

def _data_span(path, entry):
    """(offset, size) of ``entry``'s bytes in the archive, read from its local header (an
    independent reading: the header's own name and extra-field lengths)."""
    info = zipfile.ZipFile(path).getinfo(entry)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def _flip(path, offset, data: bytes):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _state(seed, n=2000):
    g = torch.Generator().manual_seed(seed)
    return {"format": CHECKPOINT_FORMAT, "step": seed,
            "weights": {f"w{i}": torch.randn(n + 37 * i, generator=g) for i in range(5)}}


@pytest.mark.parametrize("seed", range(6))
def test_checkpoint_damage_names_the_entry_zipfile_finds(tmp_path, seed):
    """A few bytes changed at a random place of a random tensor's data: checkpoint_damage names
    the entry that Python's zipfile.testzip (the reference) names; the intact file passes both."""
    rng = random.Random(seed)
    p = save_checkpoint(_state(seed), tmp_path, seed)
    assert checkpoint_damage(p) is None and zipfile.ZipFile(p).testzip() is None
    entries = [i.filename for i in zipfile.ZipFile(p).infolist() if "/data/" in i.filename]
    entry = rng.choice(entries)
    start, size = _data_span(p, entry)
    # NaN bytes or an ordinary finite float: both change the weights without torch.load noticing
    data = b"\xff\xff\xff\xff" if seed % 2 else struct.pack("<f", rng.uniform(-2, 2))
    _flip(p, start + 4 * rng.randrange(size // 4), data)
    assert zipfile.ZipFile(p).testzip() == entry
    torch.load(p, weights_only=True)  # torch's reader does not look: this is the defect
    assert checkpoint_damage(p) == f"corrupt: entry {entry!r} does not match its stored CRC-32"
    with pytest.raises(UserError, match=rf"^checkpoint {str(p)!r} is damaged \(corrupt: entry {entry!r} "):
        load_checkpoint(p)


def test_checkpoint_damage_kinds(tmp_path):
    p = save_checkpoint(_state(1), tmp_path, 1)
    whole = p.read_bytes()
    for cut in (1, 2, 3, 100, len(whole) // 2, len(whole) - 1):  # cut short anywhere
        (tmp_path / "cut.pt").write_bytes(whole[:cut])
        assert checkpoint_damage(tmp_path / "cut.pt") == "truncated or corrupt: its zip archive is incomplete", cut
    for other in (b"", b"x", b"\x80\x02}q\x00.", b"hello, world"):  # not a zip archive: the reader says what it is
        (tmp_path / "other.pt").write_bytes(other)
        assert checkpoint_damage(tmp_path / "other.pt") is None
    # an archive torch wrote without CRCs has nothing to compare: it is not called damaged
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(_state(2), tmp_path / "nocrc.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    assert checkpoint_damage(tmp_path / "nocrc.pt") is None
    assert torch.equal(load_checkpoint(tmp_path / "nocrc.pt")["weights"]["w3"], _state(2)["weights"]["w3"])


def test_find_latest_checkpoint_skips_a_damaged_newest_with_the_truncated_ones_warning(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(_state(step), tmp_path, step)
    newest = list_checkpoints(tmp_path)[-1][1]
    start, size = _data_span(newest, "archive/data/2")
    _flip(newest, start + size // 2, b"\x00\x00\xc0\x7f")  # a NaN
    with pytest.warns(RuntimeWarning) as got:
        path, state = find_latest_checkpoint(tmp_path)
    assert path.name == "ckpt-0000000002.pt" and state["step"] == 2
    (msg,) = [str(w.message) for w in got]
    assert msg == (f"checkpoint {newest} is unreadable (corrupt: entry 'archive/data/2' does not match its stored "
                   f"CRC-32); trying an older one")
    # the same words as for a truncated one
    middle = list_checkpoints(tmp_path)[1][1]
    middle.write_bytes(middle.read_bytes()[:500])
    with pytest.warns(RuntimeWarning) as got:
        path, state = find_latest_checkpoint(tmp_path)
    assert state["step"] == 1
    assert [str(w.message) for w in got][1] == (f"checkpoint {middle} is unreadable (truncated or corrupt: its zip "
                                                f"archive is incomplete); trying an older one")


@pytest.fixture
def damaged_run(tmp_path, grey_ckpt):
    """A run folder of two checkpoints whose newest has 4 bytes of a tensor set to NaN."""
    ck = tmp_path / "run" / "checkpoints"
    ck.mkdir(parents=True)
    shutil.copy(grey_ckpt, ck / "ckpt-0000000001.pt")
    shutil.copy(grey_ckpt, ck / "ckpt-0000000002.pt")
    bad = ck / "ckpt-0000000002.pt"
    entry = max(zipfile.ZipFile(bad).infolist(), key=lambda i: i.file_size).filename
    start, size = _data_span(bad, entry)
    _flip(bad, start + size // 2, b"\xff\xff\xff\xff")
    return tmp_path / "run", bad, entry


def test_load_refuses_a_damaged_file_and_a_run_folder_falls_back(damaged_run, capsys):
    run_dir, bad, entry = damaged_run
    with pytest.raises(UserError) as e:
        alae_fast.load(bad)
    msg = str(e.value)
    assert not isinstance(e.value, OfficialCheckpointError) and "\n" not in msg
    assert msg == (f"{bad} is a damaged alae_fast checkpoint (corrupt: entry {entry!r} does not match its stored "
                   f"CRC-32); the run folder {str(run_dir)!r} opens its newest undamaged one")
    with pytest.warns(RuntimeWarning, match=rf"checkpoint {bad} is unreadable \(corrupt: entry {entry!r}"):
        run = alae_fast.load(run_dir)
    assert run.path.name == "ckpt-0000000001.pt" and torch.isfinite(run.generate(2)).all()
    # the CLI: the file is one line and status 2; the folder a warning and the older checkpoint
    capsys.readouterr()
    assert main(["generate", "--ckpt", str(bad), "--out", str(run_dir / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad} is a damaged alae_fast checkpoint" in err and entry in err
    assert main(["generate", "--ckpt", str(run_dir), "--out", str(run_dir / "x.png"), "--n", "2"]) == 0
    err = capsys.readouterr().err
    assert f"checkpoint {bad} is unreadable (corrupt: entry {entry!r}" in err and "using the older checkpoint" in err


def test_a_cut_checkpoint_is_said_to_be_one(tmp_path, grey_ckpt):
    """Cut to 1-3 bytes it is no "text file"; cut anywhere it is a damaged checkpoint (alae_fast's
    when its first bytes say so), never an OfficialCheckpointError."""
    whole = grey_ckpt.read_bytes()
    for cut, what in ((1, "a damaged checkpoint"), (3, "a damaged checkpoint"),
                      (4000, "a damaged alae_fast checkpoint"), (len(whole) - 10, "a damaged alae_fast checkpoint")):
        p = tmp_path / f"cut{cut}.pt"
        p.write_bytes(whole[:cut])
        with pytest.raises(UserError) as e:
            alae_fast.load(p)
        assert not isinstance(e.value, OfficialCheckpointError)
        assert str(e.value) == f"{p} is {what} (truncated or corrupt: its zip archive is incomplete)", cut


def test_a_load_compares_each_files_crcs_once(tmp_path, grey_ckpt, monkeypatch):
    """Comparing the stored CRC-32s reads the whole file; load_run compared a single file's twice
    (its own check, then the official reader's). Counted where every reader looks the check up:
    zip_integrity (training.checkpoint imports it when called) and official_io (bound at import)."""
    from collections import Counter
    from pathlib import Path

    from alae_fast import zip_integrity
    from alae_fast.models import official_io

    real, calls = zip_integrity.checkpoint_damage, Counter()

    def counted(path, *args, **kwargs):
        calls[Path(path).resolve()] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(zip_integrity, "checkpoint_damage", counted)
    monkeypatch.setattr(official_io, "checkpoint_damage", counted)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    ckpt = Path(shutil.copy(grey_ckpt, tmp_path / "run" / "checkpoints" / "ckpt-0000000001.pt"))
    official = Path(__file__).parent / "data" / "official-alae" / "alae-small.pth"
    converted = tmp_path / "converted.pt"
    cases = [("run folder", tmp_path / "run", ckpt, alae_fast.load), ("checkpoint", ckpt, ckpt, alae_fast.load),
             ("official .pth", official, official, alae_fast.load),
             ("convert", official, official, lambda p: loading.convert_official(p, converted)),
             ("converted", converted, converted, alae_fast.load),
             # the official reader on its own still compares them
             ("read_official_checkpoint", official, official, official_io.read_official_checkpoint)]
    for what, given, file, load in cases:
        calls.clear()
        load(given)
        assert calls == {file.resolve(): 1}, what


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.048", "--no-eval", *TINY]) == 0
    ckpts = list_checkpoints(out / "checkpoints")
    assert len(ckpts) >= 2
    newest = ckpts[-1][1]
    start, size = _data_span(newest, "archive/data/1")
    _flip(newest, start + 8, b"\x01\x02\x03\x04")
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.064", "--no-eval", "--no-progress",
                 "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert f"checkpoint {newest} is unreadable (corrupt: entry 'archive/data/1' does not match" in captured.err
    assert f"resuming from {ckpts[-2][1]}" in captured.out
    assert all(checkpoint_damage(p) is None for _, p in list_checkpoints(out / "checkpoints"))


# --- 2. devices this torch lacks ------------------------------------------------------------------------

# every device type torch.device names (some warn that they are deprecated)
_TORCH_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "xla", "hpu", "mtia", "ipu", "vulkan", "hip", "ve",
                       "maia", "fpga", "opengl", "opencl", "ideep", "mkldnn", "lazy", "privateuseone")


# (ids not the bare names: a test whose id is "cuda" is skipped without a GPU, see conftest.py)
@pytest.mark.parametrize("kind", _TORCH_DEVICE_TYPES, ids=lambda k: f"type-{k}")
def test_every_device_type_is_usable_or_one_line(kind):
    """What torch names is either a device this torch can use or a one-line UserError naming the
    argument, never torch's RuntimeError/AssertionError."""
    for name, said in (("device", f"device='{kind}'"), ("--device", f"--device {kind}")):
        try:
            dev = check_device(kind, name)
        except UserError as e:
            msg = str(e)
            assert "\n" not in msg and msg.startswith((said, f"{name}: '{kind}' is not supported")), msg
            if kind in ("cuda", "mps", "xpu"):
                assert msg.endswith("; use device='cpu'" if name == "device" else "; use --device cpu"), msg
        else:
            assert dev.type == kind


@pytest.mark.parametrize("kind, built", [("mps", "MPS"), ("xpu", "XPU")])
def test_mps_and_xpu_without_them(grey_ckpt, kind, built, capsys, monkeypatch):
    monkeypatch.setattr(loading, "_accelerator", lambda k: (False, 0) if k == kind else (True, 1))
    with pytest.raises(UserError, match=rf"^device='{kind}': this torch was built without {built} .*; "
                                        rf"use device='cpu'$"):
        alae_fast.load(grey_ckpt, device=kind)
    assert main(["generate", "--ckpt", str(grey_ckpt), "--device", f"{kind}:0", "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--device {kind}:0: this torch was built without {built}" in err
    monkeypatch.setattr(loading, "_accelerator", lambda k: (True, 0))  # built in, no device there
    with pytest.raises(UserError, match=rf"^device='{kind}': no {built} .*available; use device='cpu'$"):
        check_device(kind)


def test_accelerator_index_past_the_devices(monkeypatch):
    monkeypatch.setattr(loading, "_accelerator", lambda k: (True, 2))
    assert check_device("xpu:1") == torch.device("xpu:1") and check_device("mps") == torch.device("mps")
    with pytest.raises(UserError, match=r"^--device xpu:2: only 2 XPU devices are visible$"):
        check_device("xpu:2", "--device")
    with pytest.raises(UserError, match=r"^device='cuda:5': only 2 GPUs are visible$"):
        check_device("cuda:5")


def test_accelerator_answers_without_raising():
    for kind in ("cuda", "mps", "xpu"):
        built, count = loading._accelerator(kind)
        assert isinstance(built, bool) and count >= 0 and (built or count == 0)


# --- 3. the run's noise mode is every method's default -----------------------------------------------

def test_reconstruct_and_generate_default_to_the_runs_noise_mode(grey_ckpt):
    x = _images(3, 1, 32, seed=1)
    zero = alae_fast.load(grey_ckpt)
    for mode in ("const", "zero", "random"):
        run = alae_fast.load(grey_ckpt, noise_mode=mode)
        with torch.no_grad():
            w = run.model.encode(x, run.phase.lod, run.phase.blend)
            torch.manual_seed(7)
            ref_rec = run.model.decode(w, run.phase.lod, run.phase.blend, noise=mode)  # the model itself
            torch.manual_seed(7)
            rec = run.reconstruct(x)
        torch.testing.assert_close(rec, ref_rec, rtol=0, atol=0)
        torch.testing.assert_close(run.generate(2, seed=4), sample_images(run, 2, seed=4, noise=mode), rtol=0, atol=0)
        # an explicit noise still wins
        torch.testing.assert_close(run.reconstruct(x, noise="zero"), zero.reconstruct(x), rtol=0, atol=0)
        torch.testing.assert_close(run.generate(2, seed=4, noise="zero"), zero.generate(2, seed=4), rtol=0, atol=0)
    const = alae_fast.load(grey_ckpt, noise_mode="const")
    assert not torch.equal(const.reconstruct(x), zero.reconstruct(x))  # the noise weights are not 0: it shows
    torch.testing.assert_close(const.reconstruct(x), const.decode(const.encode(x)), rtol=0, atol=0)


# --- 4. grey images for a colour run, at every level ------------------------------------------------------

def test_a_colour_run_takes_grey_images_at_every_level(colour_ckpts):
    for ckpt in colour_ckpts:
        run = alae_fast.load(ckpt)
        r, R = run.phase.resolution, run.schedule.resolution
        for res in {r, R}:
            grey = _images(2, 1, res, seed=res)
            colour = grey.repeat(1, 3, 1, 1)  # the reference: R = G = B
            torch.testing.assert_close(run.encode(grey), run.encode(colour), rtol=0, atol=0)
            torch.testing.assert_close(run.reconstruct(grey), run.reconstruct(colour), rtol=0, atol=0)
        with pytest.raises(ValueError, match=r"^encode: x has 2 channels; this run's model takes 3$"):
            run.encode(_images(2, 2, r))


def test_a_grey_run_refuses_colour_images_at_every_level(grey_ckpt):
    run = alae_fast.load(grey_ckpt)
    for res in (run.phase.resolution, run.schedule.resolution):
        with pytest.raises(ValueError, match=r"^reconstruct: x has 3 channels; this run's model takes 1 "
                                             r"\(greyscale\): convert colour images"):
            run.reconstruct(_images(2, 3, res))


# --- 5. interpolation of images of two dtypes -------------------------------------------------------------

@pytest.mark.parametrize("da, db", [(torch.float64, torch.float32), (torch.float32, torch.bfloat16),
                                    (torch.float16, torch.float64)])
def test_interpolate_latents_takes_two_dtypes(grey_ckpt, da, db):
    run = alae_fast.load(grey_ckpt)
    a, b = _images(1, 1, 32, seed=1).to(da), _images(1, 1, 32, seed=2).to(db)
    got = interpolate_latents(run, a, b, 4)
    # the reference: the two latents in float64, the segment by its formula
    wa, wb = run.encode(a).double(), run.encode(b).double()
    t = torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64).view(-1, 1)
    want = run.decode((wa + t * (wb - wa)).float())
    assert got.shape == (4, 1, 32, 32) and got.dtype == torch.float32
    # the same latents, so only the segment's rounding differs: lerp runs in float32 or float64 here,
    # and G carries a w's float32 rounding to its pixels with some gain (1.2e-5 seen on one pixel of
    # a digits-32 run trained channels_last, 2026-12-07); a wrong segment moves pixels far more
    torch.testing.assert_close(got, want, rtol=1e-4, atol=5e-5)


# --- 6. noise tensors with NaN, and the noise error's wording -----------------------------------------------

def _noise(run, n, value=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(2 * (run.phase.lod + 1)):
        r = 4 * 2 ** (k // 2)
        out.append(torch.randn(n, 1, r, r, generator=g) if value is None else torch.full((n, 1, r, r), value))
    return out


def test_decode_checks_noise_tensors(grey_ckpt):
    run = alae_fast.load(grey_ckpt)
    w = torch.randn(2, run.model.latent_size, generator=torch.Generator().manual_seed(3))
    noise = _noise(run, 2)
    torch.testing.assert_close(run.decode(w, noise=noise), run.model.decode(w, run.phase.lod, run.phase.blend,
                                                                            noise=noise), rtol=0, atol=0)
    x = _images(2, 1, 32)
    for bad_value in (float("nan"), float("inf")):
        bad = list(noise)
        bad[3] = bad[3].clone()
        bad[3][1, 0, 2, 2] = bad_value
        for call, op in ((lambda nz: run.decode(w, noise=nz), "decode"),
                         (lambda nz: run.reconstruct(x, noise=nz), "reconstruct"),
                         (lambda nz: run.generate(2, noise=nz), "generate")):
            with pytest.raises(ValueError, match=rf"^{op}: noise\[3\] contains NaN or infinity$"):
                call(bad)
    with pytest.raises(TypeError, match=r"^decode: noise\[1\] must be a tensor or None; got list"):
        run.decode(w, noise=[noise[0], [0.0]])
    with pytest.raises(TypeError, match=r"^decode: noise\[0\] must have a float dtype; got torch.int64"):
        run.decode(w, noise=[noise[0].long()])
    with pytest.raises(ValueError, match=r"^decode: noise\[0\] is on meta and the model on cpu"):
        run.decode(w, noise=[noise[0].to("meta")])
    for bad, exc in (("loud", ValueError), (3, TypeError), (torch.zeros(2), TypeError)):
        with pytest.raises(exc, match=r"^decode: noise must be one of \(.*\) or a list of per-layer noise "
                                      r"tensors; got (a tensor of shape \(2,\)|'loud'|3 of type int)$"):
            run.decode(w, noise=bad)


# --- 7. wording --------------------------------------------------------------------------------------------

def test_generate_seeds_noise_mode_error_names_the_function(grey_ckpt):
    run = alae_fast.load(grey_ckpt)
    with pytest.raises(ValueError, match=r"^generate_seeds: noise_mode must be one of \('const', .*\); got 'loud'$"):
        generate_seeds(run, [1], noise_mode="loud")


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, capsys):
    # a user's trial: a NaN bias loaded silently and every picture came out NaN
    path = _write_run(tmp_path / "ckpt-nan.pt", DIGITS_32)
    state = torch.load(path, weights_only=True)
    name = next(k for k in state["trainer"]["ema"]["module"] if k.endswith("bias"))
    state["trainer"]["ema"]["module"][name][0] = float("nan")
    torch.save(state, path)
    with pytest.raises(UserError, match=rf"its EMA weight {name} holds NaN or infinity"):
        alae_fast.load(path)
    assert main(["generate", "--ckpt", str(path), "--n", "1"]) == 2
    assert f"its EMA weight {name} holds NaN or infinity" in capsys.readouterr().err


def _official_with(tmp_path, change):
    from alae_fast.models.official_io import read_official_checkpoint

    state = read_official_checkpoint(Path(__file__).parent / "data" / "official-alae" / "alae-small.pth")
    change(state["models"])
    out = tmp_path / "changed.pth"
    torch.save({"models": state["models"]}, out)
    return out


@pytest.mark.parametrize("change, said", [
    (lambda m: m["generator_s"]["decode_block.0.bias_1"].fill_(float("nan")),
     r"generator_s\.decode_block\.0\.bias_1 holds NaN or infinity"),
    (lambda m: m["dlatent_avg"].__setitem__("buff", torch.zeros(7, 32)),
     r"dlatent_avg\.buff has shape \[7, 32\]; the config gives \[12, 32\] \(one row per style input\)"),
    (lambda m: m["dlatent_avg"]["buff"][5].add_(1.0), r"dlatent_avg\.buff's rows differ \(by up to 1\)"),
    (lambda m: m["dlatent_avg"]["buff"][0].fill_(float("inf")), r"dlatent_avg\.buff holds NaN or infinity"),
])
def test_an_official_checkpoint_of_non_finite_weights_or_another_w_average_is_refused(tmp_path, change, said):
    with pytest.raises(OfficialCheckpointError, match=said):
        alae_fast.load(_official_with(tmp_path, change))


def test_a_stray_generator_block_is_named_without_a_yaml(tmp_path):
    # "generator_s has no decode_block.0 ..." had answered a file whose blocks 0-5 are all there
    def add(models):
        models["generator_s"]["decode_block.9.conv_1.weight"] = torch.zeros(4, 4, 3, 3)

    with pytest.raises(OfficialCheckpointError, match=r"generator_s has decode blocks \[0, 1, 2, 3, 4, 5, 9\], not "
                                                      r"consecutive from 0: decode_block\.6 is missing, or "
                                                      r"decode_block\.9 is not its own"):
        alae_fast.load(_official_with(tmp_path, add))


def test_an_official_file_without_d_opens_for_sampling_with_a_warning(tmp_path):
    # the official Checkpointer.load warns of a model without its state dict and goes on; a
    # file cut down to F, G and E had been refused ("'models' has no state dict 'mapping_tl_s'")
    def drop(models):
        models.pop("mapping_tl_s")

    with pytest.warns(RuntimeWarning, match=r"'models' has no mapping_tl_s \(the latent discriminator D\): D keeps "
                                            r"freshly initialised weights"):
        run = alae_fast.load(_official_with(tmp_path, drop))
    io = torch.load(Path(__file__).parent / "data" / "official-alae" / "alae-small_io.pt", weights_only=True)
    model = run.model.double()
    with torch.no_grad():
        torch.testing.assert_close(model.mapping(io["z"]), io["w"], rtol=1e-5, atol=1e-6)  # float32 weights
    # the training weights need their own D: without it, as without any model, the file is refused
    def drop_both(models):
        models.pop("mapping_tl_s")
        models.pop("generator")

    with pytest.raises(OfficialCheckpointError):
        alae_fast.load(_official_with(tmp_path, drop_both), ema=False)

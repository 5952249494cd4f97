"""Helpers shared by the test files (not a test module): loading the other helper files, the toy
model, the tiny-run command-line options, thread limits, an op recorder and random images in the
pixel range (``pixels``).

Tests run in importlib mode, so files beside them are not importable by name. tests/conftest.py
registers this file as ``alae_fast_tests_support`` (and ``oracles.py`` as
``alae_fast_tests_oracles``) before any test module is imported; test files import from those
names. Files with side effects or optional dependencies (``toy_alae.py`` registers a preset,
``app_support.py`` needs Pillow) load on first use through ``sibling``.

Only torch is imported here: the lent GPU machines and the sanitizer venv have torch, numpy,
pytest and hypothesis, and nothing else.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

HERE = Path(__file__).parent

# `alae-fast train` options that make the digits-mlp preset tiny (seconds per run on one thread).
TINY = ["--set", "encoder_hidden=[32]", "--set", "generator_hidden=[32]", "--set", "latent_size=8",
        "--set", "mapping_layers=2", "--schedule", "lod_batch=[16]", "--no-progress", "--threads", "1"]


def ramp_png(folder) -> Path:
    """``folder/x.png``: a 32x32 8-bit grey image of a ramp (i mod 251 in reading order, never
    flat), for the commands that take image files."""
    import numpy as np
    from PIL import Image

    path = Path(folder) / "x.png"
    Image.fromarray((np.arange(1024, dtype=np.uint32).reshape(32, 32) % 251).astype(np.uint8)).save(path)
    return path


def pixels(*shape: int, dtype: torch.dtype = torch.float32, device=None, seed: int | None = None) -> torch.Tensor:
    """Random images in the pixel range: uniform in [-1, 1), the given shape, dtype (float32
    unless given) and device (None: torch's default device), drawn from torch's global generator,
    or with ``seed`` from a CPU generator of their own (the same images whatever ran before,
    on any device; device None is then the CPU).
    encode, reconstruct and project refuse values beyond ±4 (``PIXEL_LIMIT``), which a randn
    image of a few thousand values holds now and then, so a test feeding randn images to E
    passes or fails with whatever drew numbers before it."""
    if seed is None:
        return torch.rand(*shape, dtype=dtype, device=device) * 2 - 1
    # drawn on the CPU, then moved: the same images on every device (a CPU generator cannot
    # draw on CUDA)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype, device="cpu") * 2 - 1
    return x if device is None else x.to(device)


def train_tiny_run(out: Path) -> Path:
    """``out``: a run folder of the digits-mlp preset made tiny (TINY), trained on 32 images
    without evaluation, one thread: what tests of the commands that read a run start from."""
    from alae_fast.cli import main  # here, not at the top: the GPU machines' tests import this file bare

    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.032", "--no-eval",
                     *TINY]) == 0
    return out


def sibling(filename: str, folder: Path = HERE):
    """<folder>/<filename> (default tests/) as a module, loaded once per process under the fixed
    name ``alae_fast_tests_<stem>`` (a fixed name, so that a subprocess loading the same file by
    path agrees on it). Later calls return the module already loaded."""
    name = "alae_fast_tests_" + Path(filename).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, folder / filename)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def benchmark_script(filename: str):
    """benchmarks/<filename> (a script, not a package module) as a module: :func:`sibling`'s."""
    return sibling(filename, HERE.parent / "benchmarks")


def toy():
    """The toy progressive ALAE module (toy_alae.py); loading it registers the preset ``toy-pg``."""
    return sibling("toy_alae.py")


@contextlib.contextmanager
def one_thread():
    """One torch thread, and one BLAS thread where threadpoolctl is installed, restored on exit.

    Why: the machines running the suite are shared, and the tensors here are small. Waking a
    thread pool for each of the thousands of small ops of a gradcheck costs more than the ops,
    and OpenBLAS/OpenMP workers spinning against other processes made a 480x480 eigh (FID) take
    5 s instead of 0.1 s. threadpoolctl comes with scikit-learn, which the GPU machines and the
    sanitizer venv lack: there only torch is limited.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1) if threadpool_limits else contextlib.nullcontext():
            yield
    finally:
        torch.set_num_threads(n)


def tensors_in(obj) -> list:
    """Every tensor in a nested dict / list / tuple (a checkpoint, an optimizer state), depth
    first, dict keys in sorted order: two states compare tensor by tensor."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in tensors_in(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors_in(v)]
    return []


def assert_same_training_state(a: dict, b: dict) -> None:
    """Two checkpoints hold the same training state, tensor for tensor: images seen, model, EMA,
    both optimisers, the latent generator and the data stream (a resumed run against one that
    never stopped)."""
    assert a["trainer"]["images_seen"] == b["trainer"]["images_seen"]
    for key in ("model", "ema", "opt_ed", "opt_fg", "generator"):
        ta, tb = tensors_in(a["trainer"][key]), tensors_in(b["trainer"][key])
        assert len(ta) == len(tb) and all(torch.equal(u, v) for u, v in zip(ta, tb)), key
    assert a["data"] == b["data"]


class OpRecorder(TorchDispatchMode):
    """Records the ops dispatched below autograd while active (``with OpRecorder() as rec``):
    ``ops``, every op's name; ``calls``, (name, last argument) of each alae_fast op."""

    def __init__(self):
        super().__init__()
        self.ops = []
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        self.ops.append(name)
        if name.startswith("alae_fast."):
            self.calls.append((name, args[-1]))
        return func(*args, **(kwargs or {}))

    def alae_ops(self) -> set[str]:
        """The names of the alae_fast ops recorded."""
        return {o for o in self.ops if o.startswith("alae_fast.")}


def r1_grads(m, x, x_fake, *encode_args):
    """The discriminator loss with R1 (gamma 10) of model ``m`` on real ``x`` and fake ``x_fake``,
    encoding with ``m.encode(v, *encode_args)``, and the gradients its backward leaves:
    (loss detached, {parameter name: gradient}). Zeroes ``m``'s gradients first."""
    from alae_fast.training.losses import discriminator_loss

    m.zero_grad(set_to_none=True)
    loss = discriminator_loss(lambda v: m.encode(v, *encode_args), m.discriminator, x, x_fake, r1_gamma=10.0)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


def assert_r1_matches(loss, grads, loss_ref, grads_ref, grad_rtol: float) -> None:
    """``r1_grads`` of the kernels against the reference's: the same loss (1e-10), gradients for
    the same encoder and discriminator parameters, each within ``grad_rtol`` (atol 1e-9)."""
    torch.testing.assert_close(loss, loss_ref, rtol=1e-10, atol=1e-10)
    assert set(grads) == set(grads_ref) and any(n.startswith("encoder.") for n in grads)
    assert all(n.startswith(("encoder.", "discriminator.")) for n in grads)
    for n in grads:
        torch.testing.assert_close(grads[n], grads_ref[n], rtol=grad_rtol, atol=1e-9, msg=n)


def augment_ref(img: torch.Tensor, policies, gen: torch.Generator) -> torch.Tensor:
    """DiffAugment written out image by image (Zhao et al. 2020), independently of
    ``alae_fast.training.augment``: the same draws, in the documented order (per policy, one
    float64 U[0, 1) per image for each random quantity, from ``gen``): translation dy then dx,
    each floor(u (2s + 1)) - s with s = side // 8, vacated pixels 0; cutout a ceil(side/2)
    square centred at floor(u side) (row, then column), clipped, set to 0; color brightness
    + u - 0.5, saturation (C > 1) x 2u about the channel mean, contrast x (u + 0.5) about the
    image mean. Differentiable (slicing and arithmetic only)."""
    n, c, h, w = img.shape
    for policy in policies:
        if policy == "translation":
            sy, sx = h // 8, w // 8
            if sy == 0 and sx == 0:
                continue
            dy = torch.rand(n, generator=gen, dtype=torch.float64)
            dx = torch.rand(n, generator=gen, dtype=torch.float64)
            out = []
            for i in range(n):
                ty = int(dy[i] * (2 * sy + 1)) - sy
                tx = int(dx[i] * (2 * sx + 1)) - sx
                shifted = torch.zeros_like(img[i])
                # out[y, x] = img[y - ty, x - tx] where that pixel exists
                ys, ye = max(0, ty), min(h, h + ty)
                xs, xe = max(0, tx), min(w, w + tx)
                shifted[:, ys:ye, xs:xe] = img[i, :, ys - ty:ye - ty, xs - tx:xe - tx]
                out.append(shifted)
            img = torch.stack(out)
        elif policy == "cutout":
            ch, cw = (h + 1) // 2, (w + 1) // 2
            cy = torch.rand(n, generator=gen, dtype=torch.float64)
            cx = torch.rand(n, generator=gen, dtype=torch.float64)
            out = []
            for i in range(n):
                y0 = int(cy[i] * h) - ch // 2
                x0 = int(cx[i] * w) - cw // 2
                keep = torch.ones(h, w, dtype=img.dtype)
                keep[max(0, y0):max(0, y0 + ch), max(0, x0):max(0, x0 + cw)] = 0
                out.append(img[i] * keep)
            img = torch.stack(out)
        elif policy == "color":
            b = torch.rand(n, generator=gen, dtype=torch.float64)
            img = torch.stack([img[i] + (float(b[i]) - 0.5) for i in range(n)])
            if c > 1:
                s = torch.rand(n, generator=gen, dtype=torch.float64)
                img = torch.stack([(img[i] - img[i].mean(0)) * (2 * float(s[i])) + img[i].mean(0) for i in range(n)])
            k = torch.rand(n, generator=gen, dtype=torch.float64)
            img = torch.stack([(img[i] - img[i].mean()) * (float(k[i]) + 0.5) + img[i].mean() for i in range(n)])
        else:
            raise ValueError(policy)
    return img

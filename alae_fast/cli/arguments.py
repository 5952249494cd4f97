"""The value types of the ``alae-fast`` options (argparse ``type=`` callables): each refuses a bad
value in one line naming what was expected."""

from __future__ import annotations

import argparse
import json
import math

from ..limits import MAX_REFINE_STEPS


def _kv(text: str) -> tuple[str, object]:
    """FIELD=VALUE with VALUE parsed as JSON when it is JSON ([32, 32], 0.5, true), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _positive_float(text: str) -> float:
    v = float(text)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return v


def _upload_mb(text: str) -> float:
    """``--max-upload-mb``: MiB within ``alae_fast.app.uploads.UPLOAD_LIMIT_RANGE`` (64 KiB to
    1 GiB: below, nearly every photo is refused, 1e-9 every upload; above, the limit and the
    memory bound of the uploads held at once are gone), as ``serve(max_upload_mb=)`` checks it."""
    from ..app.uploads import check_upload_limit

    v = float(text)
    try:
        check_upload_limit(v, "--max-upload-mb")
    except ValueError as e:
        # its words without the argument's name (argparse names the flag) and with the value as typed
        said = str(e).split(": ", 1)[1].rsplit(", got ", 1)[0]
        raise argparse.ArgumentTypeError(f"{said}, got {text}") from None
    return v


_upload_mb.__name__ = "number"  # argparse's "invalid number value: 'x'"


def _kimg_amount(text: str) -> float:
    """A length in kimg: finite and at least one image (a run, or an interval, counts whole
    images; a smaller value would round to none)."""
    from ..training.options import MIN_KIMG, is_kimg_amount
    v = _positive_float(text)
    if not is_kimg_amount(v):
        raise argparse.ArgumentTypeError(f"expected at least {MIN_KIMG} (one image), got {text}")
    return v


def _run_kimg(text: str) -> float:
    """``--kimg``: a :func:`_kimg_amount` of at most ``MAX_KIMG``, the bound ``TrainOptions.kimg``
    has (the intervals keep none: one longer than the run only never comes)."""
    from ..training.options import MAX_KIMG, MAX_KIMG_SAID
    v = _kimg_amount(text)
    if v > MAX_KIMG:
        raise argparse.ArgumentTypeError(f"expected {MAX_KIMG_SAID}, got {text}")
    return v


def _refine_lr(text: str) -> float:
    """``--refine-lr``: a finite number > 0 of at most ``MAX_REFINE_LR``, the bound
    ``check_refine_lr`` puts on the API's ``refine_lr``; refused here, in the parser's words
    and as typed, not after the run is opened."""
    from ..inference.projection import DEFAULT_REFINE_LR, MAX_REFINE_LR
    v = _positive_float(text)
    if v > MAX_REFINE_LR:
        raise argparse.ArgumentTypeError(f"expected a number in (0, {MAX_REFINE_LR:g}] (Adam's rate in w's units; "
                                         f"default {DEFAULT_REFINE_LR:g}), got {text}")
    return v


def _augment_policies(text: str) -> str:
    """DiffAugment policies as the trainer records them: 'translation,cutout' (spaces dropped),
    '' for 'none'."""
    from ..training.augment import parse_augment
    try:
        return ",".join(parse_augment(text, "--augment"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[1]) from None


_augment_policies.__name__ = "policy list"


def _nonnegative_float(text: str) -> float:
    v = float(text)
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return v


def _probability(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return v


def _int_at_least(low: int):
    """An argparse type: an int >= ``low`` (the message says which)."""
    def parse(text: str) -> int:
        v = int(text)
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text}")
        return v
    parse.__name__ = "int"  # what argparse's "invalid ... value" names
    return parse


_positive_int = _int_at_least(1)


def _refine_steps(text: str) -> int:
    """An argparse type: descent steps of a projection, an int in [0, MAX_REFINE_STEPS] in decimal
    digits, as seeds are read (the range said for a text that is no such int too: "2.5" is as
    wrong as "-1")."""
    v = _decimal(text)
    if v is None or not v <= MAX_REFINE_STEPS:
        raise argparse.ArgumentTypeError(f"expected an int in [0, {MAX_REFINE_STEPS}], got {text}")
    return v


def _run_path(text: str) -> str:
    """An argparse type for ``--ckpt``/``--network``: the text as given, refused when empty (a
    path of '' would be read as the current folder and reported as a folder without checkpoints)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a checkpoint file or run folder; got an empty value")
    return text


def _psi(text: str) -> float:
    """Truncation psi: a finite number in ``alae_fast.inference.sampling.PSI_RANGE``."""
    from ..inference.sampling import PSI_RANGE

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not PSI_RANGE[0] <= v <= PSI_RANGE[1]:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected psi in [{PSI_RANGE[0]:g}, {PSI_RANGE[1]:g}], got {text}")
    return v


def parse_seeds(text: str) -> list[int]:
    """NVlabs' seed lists: ``"0-7,12"`` -> ``[0, 1, ..., 7, 12]`` (ranges inclusive, seeds in
    [0, 2**63) as ``--seed`` and ``run.generate(seed=)`` take them, duplicates kept in order).
    Raises ``argparse.ArgumentTypeError`` naming the bad part."""
    from ..inference.sampling import SEED_LIMIT, seed_range_text

    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        a, b = _decimal(lo), (_decimal(hi) if dash else _decimal(lo))
        if a is None or b is None:
            raise argparse.ArgumentTypeError(f"expected seeds like 0-7,12 (decimal digits); cannot read {part!r}")
        # NVlabs' scripts stop at 2**32 (numpy's RandomState); z here comes from torch's
        # generator, so every seed --seed and the Python API take is one a list may name
        if not b < SEED_LIMIT:
            raise argparse.ArgumentTypeError(f"expected seeds in {seed_range_text()}; got {part!r}")
        if a > b:
            raise argparse.ArgumentTypeError(f"the range {part!r} runs backwards; write it low-high ({b}-{a})")
        if b - a >= 100_000 or len(seeds) + b - a >= 100_000:
            raise argparse.ArgumentTypeError(f"expected at most 100000 seeds; {text!r} has more")
        seeds.extend(range(a, b + 1))
    return seeds


def check_device(text: str):
    """A ``--device`` value as a ``torch.device`` this torch can use; UserError naming --device
    otherwise (:func:`alae_fast.inference.loading.check_device`, which the Python API runs too)."""
    from ..inference.loading import check_device as check

    return check(text, "--device")


def _decimal(text: str) -> int | None:
    """``text`` as a whole number written in ASCII decimal digits only (what the web page reads
    too), else None: Python's int() would also take "1_000", "+5" and other scripts' digits."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _seed(text: str) -> int:
    """An argparse type: a seed, an int in [0, SEED_LIMIT) = [0, 2**63) (what torch's generators
    take), in decimal digits."""
    from ..inference.sampling import SEED_LIMIT, seed_range_text
    v = _decimal(text)
    if v is None or not v < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an int in {seed_range_text()}, got {text}")
    return v


def _fid_count(text: str) -> int:
    v = int(text)
    if v < 2:  # a Fréchet distance needs a covariance: evaluate_model would generate 2 anyway
        raise argparse.ArgumentTypeError(f"expected an int >= 2 (FID compares sets of at least 2 images), got {text}")
    return v


# argparse says "invalid <__name__> value: 'x'" when a type's float()/int() fails: the kind of
# value expected, not this module's private function names
for _type, _kind in ((_positive_float, "number"), (_kimg_amount, "number"), (_run_kimg, "number"),
                     (_refine_lr, "number"), (_nonnegative_float, "number"),
                     (_probability, "number"), (_psi, "number"), (_fid_count, "int"), (_seed, "int")):
    _type.__name__ = _kind

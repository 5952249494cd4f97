"""The metrics of a trained model: latent classification (the end-of-training report) and every
metric of ``alae-fast evaluate`` (reconstruction MSE, FID, PPL), computed with :mod:`alae_fast.eval`
on the EMA model at the level of detail the run reached.
"""

from __future__ import annotations

import warnings

from typing import Any

import torch

from ..errors import UserError
from ..limits import DEFAULT_NUM_FID
from ..models import ModelConfig, build_model
from ..training.schedule import LODSchedule, Phase
from .loading import LoadedRun
from .pixels import prepare_images, to_display
from .projection import DEFAULT_REFINE_IMAGES, DEFAULT_REFINE_LR

__all__ = ["latent_eval", "evaluate_model", "data_relation", "data_relation_detail", "random_model",
           "RANDOM_ENCODERS", "RANDOM_ENCODER_SEED", "RELATIONS",
           "SAMPLE_COUNT", "SAMPLE_SEED", "SPLIT_LABELS", "split_label"]

# Random-encoder baseline: the mean over this many initialisations of the whole model (F, G,
# E, D built from one seed, so the draws depend on the config, not only on E), seeded
# RANDOM_ENCODER_SEED + k whatever the run's or the evaluation's seed: runs of one config and
# several seeds are compared with one number. Single draws vary widely: 100 draws of
# digits-32's encoder at latent 32 scored 85.9% to 97.0% 1-NN, mean 92.8%, standard deviation
# 2.0 points. A mean of 5 seeded by the run's seed (the baseline until 2026-12-05) moved by
# about 0.9 points from seed to seed, as much as the settings compared. The mean of 20 fixed
# draws no longer moves between seeds; its own error (sd / sqrt(20): ~0.45 points at latent 32,
# ~0.6 at latent 20 or 24, where one draw's sd is 2.6-2.7; the report prints it) is one offset shared by
# every seed's lead.
RANDOM_ENCODERS = 20
RANDOM_ENCODER_SEED = 7919
# The sample histogram of the report: this many EMA samples G(F(z)) without noise, z drawn
# from a generator seeded with the run's seed + SAMPLE_SEED.
SAMPLE_COUNT = 1000
SAMPLE_SEED = 104729


def random_model(config: ModelConfig, seed: int, device,
                 memory_format: torch.memory_format = torch.contiguous_format) -> torch.nn.Module:
    """A freshly initialised model of ``config`` (the random-encoder baseline), seeded, leaving
    the global random state untouched, its 4-D weights in ``memory_format`` (the same values in
    either layout)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config)
    return model.to(device, memory_format=memory_format).eval().requires_grad_(False)


def memory_format_of(model: torch.nn.Module) -> torch.memory_format:
    """``torch.channels_last`` when ``model``'s 4-D weights are stored channels_last (a model
    trained channels_last, ``StyleALAEConfig.channels_last``), else ``torch.contiguous_format``;
    read off the first 4-D parameter with more than one input channel and pixel, where the two
    layouts differ."""
    from ..models.style_alae import layout_of

    for p in model.parameters():
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1:
            return layout_of(p)
    return torch.contiguous_format


def _labelled(ds) -> bool:
    labels = getattr(ds, "labels", None)
    return isinstance(labels, torch.Tensor) and labels.numel() > 0 and bool((labels >= 0).all())


# What evaluate's reconstruction figures were computed on, as its report and JSON name it (the
# report says "on N <label> images"). The first three are the run's own data, whose held-out
# split is known; the others say what the images are to THIS run (:func:`data_relation`).
# "unseen" says what is known: not the run's training folder (nor a copy holding some of its
# files under their paths); a copy of its images under other names cannot be told.
# "overlap" is said with its counts by :func:`split_label`.
SPLIT_LABELS = {"held-out": "held-out",
                "training": "TRAINING (no usable held-out split)",
                "all": "held-out and TRAINING (fewer than 2 held out)",
                "unseen": "unseen (not this run's training folder)",
                "changed": "possibly TRAINING (the run's training folder changed since training, so which files "
                           "were held out is not known)",
                "overlap": "possibly TRAINING (some of its files have the paths and sizes of files in the run's "
                           "training folder)",
                "unrecorded": "possibly seen (the checkpoint records no training data)"}

# How evaluated data relate to a run, as :func:`data_relation` says it.
RELATIONS = ("own", "changed", "overlap", "other", "unrecorded")


def split_label(key: str, overlap: dict | None = None) -> str:
    """:data:`SPLIT_LABELS` ``[key]``; for ``"overlap"`` with ``overlap`` (``{"files": K, "of":
    N}``, as :func:`data_relation_detail` gives it and evaluate's JSON records it under
    ``data.overlap``) its counts: "possibly TRAINING (K of its N files have the paths and sizes
    of files in the run's training folder)". KeyError for an unknown key."""
    if key == "overlap" and isinstance(overlap, dict) and isinstance(overlap.get("files"), int) \
            and isinstance(overlap.get("of"), int):
        return (f"possibly TRAINING ({overlap['files']} of its {overlap['of']} files have the paths and sizes of "
                f"files in the run's training folder)")
    return SPLIT_LABELS[key]


def data_relation(run: LoadedRun, data: str | None) -> str:
    """:func:`data_relation_detail`'s relation alone."""
    return data_relation_detail(run, data)[0]


def data_relation_detail(run: LoadedRun, data: str | None) -> tuple[str, dict | None]:
    """``(relation, overlap)``: what the data ``data`` (a path, or None for the embedded digits) are to ``run``, from
    what it recorded (:func:`~alae_fast.inference.loading.recorded_data_spec`, and for an image
    folder :func:`~alae_fast.inference.loading.recorded_data_content`):

    - ``"own"``: the data it trained on (the digits; the same MNIST folder; an image folder
      holding the files it recorded, in its place or moved, as ``train --resume`` accepts:
      everything the record holds agrees, i.e. the files' relative paths, and for a run that
      recorded them their sizes and the bytes of the sampled files, see
      :func:`~alae_fast.data.spec.content_difference`; a run recorded before sizes and contents
      were is compared by name only), whose held-out split the run never saw;
    - ``"changed"``: its image folder, in the place it records, whose files have changed since
      (other names, sizes or sampled bytes: the held-out split, a function of the file list,
      may now include training images, or images the run never saw under its files' names);
    - ``"overlap"``: an image folder elsewhere, not the run's files, yet holding some of them:
      files with the relative path and size of one of the run's (a copy of its folder with a
      file added, its folder moved and then changed), as
      :func:`~alae_fast.data.spec.content_overlap` counts them from both records' fingerprints;
      its held-out split (a function of the names) keeps most of the run's held-out files held
      out, but may hold files the run trained on;
    - ``"other"``: any other data, including another folder of other files under the run's
      file names: none of its images is known to be the run's (its held-out split means
      nothing to this run); a run recorded before fingerprints were (or of more than
      200,000 files) cannot tell a folder holding some of its files from other data: "other";
    - ``"unrecorded"``: the run records no data (an official checkpoint, a run older than the
      record): nothing can be said.

    ``overlap`` is ``{"files": K, "of": N}`` for ``"overlap"`` (K of the folder's N image files
    are the run's, by path and size), else None.
    """
    from ..data.spec import KINDS, content_difference, content_overlap, data_content, data_spec
    from .loading import recorded_data_content, recorded_data_spec

    saved = recorded_data_spec(run)
    if not isinstance(saved, dict) or saved.get("kind") not in KINDS:
        return "unrecorded", None
    now = data_spec(data)
    if now["kind"] != saved["kind"]:
        return "other", None
    if now["kind"] == "digits":
        return "own", None
    same_place = now["path"] == saved.get("path")
    recorded = recorded_data_content(run) if now["kind"] == "folder" else None
    if recorded is None:  # an MNIST folder (its split is its files'), or a run that recorded no file list
        return ("own" if same_place else "other"), None
    try:
        current = data_content(now["path"])
    except (OSError, ValueError):  # cannot be listed: the open that follows says why
        current = None
    try:
        same = current is not None and content_difference(recorded, current) is None
    except ValueError:  # a record that is not one (edited by hand): nothing can be matched against it
        same = False
    if same:
        return "own", None
    if same_place:
        return "changed", None
    try:
        shared = content_overlap(recorded, now["path"], current) if current is not None else None
    except (OSError, ValueError, TypeError, AttributeError):  # a record edited by hand
        shared = None
    if shared:
        return "overlap", {"files": shared, "of": current["files"]}
    return "other", None


def open_unseen(data: str, resolution: int, channels: int):
    """(dataset, split read) of data a run did not train on (:func:`data_relation` "other"), or
    of any data of a run that records none ("unrecorded"): all of it ("all"; no part of it is
    held out from the run, so holding some out would only shrink it), or the
    "test" split of a source without an "all" one (MNIST: its standard 10000)."""
    from ..data import open_dataset

    try:
        return open_dataset(data, resolution, channels, split="all"), "all"
    except ValueError:  # a source without an 'all' split
        return open_dataset(data, resolution, channels, split="test"), "test"


def _real_images(data: str | None, resolution: int, channels: int, relation: str = "own"):
    """(dataset, split key, split read): the real images FID and the reconstruction error use,
    which they are to the run (a key of :data:`SPLIT_LABELS`), and the split of ``data`` read
    ("test", "train" or "all").

    Data of the run (``relation`` "own", and "changed", its folder since changed, and
    "overlap", a folder elsewhere holding some of its files): the held-out
    split, else the training split (a source with no held-out split, or whose held-out files
    cannot be read); a folder that holds out fewer than the 2 images FID needs (one of up to 14
    files) gives all its files. Other data, and any data of a run that records none
    ("unrecorded", an official checkpoint): all of it, or the test split of a source without an
    "all" split (MNIST: its standard 10000). UserError naming ``data`` when there are fewer than
    2 in all."""
    from ..data import open_dataset

    if relation in ("other", "unrecorded"):
        # Our held-out split is a hash of this folder's file names: it is held out from a run
        # that trained on this folder with alae-fast and recorded it, from nothing else. A run
        # that records no data (an official checkpoint) may have seen any of the images or none;
        # a tenth of them would be no more unseen than the rest, only fewer.
        (ds, read) = open_unseen(data, resolution, channels)
        split = "unseen" if relation == "other" else "unrecorded"
    else:
        try:
            ds, read, split = open_dataset(data, resolution, channels, split="test"), "test", "held-out"
        except (FileNotFoundError, ValueError):
            ds, read, split = open_dataset(data, resolution, channels, split="train"), "train", "training"
        if len(ds) < 2:
            try:
                ds, read, split = open_dataset(data, resolution, channels, split="all"), "all", "all"
            except ValueError:  # a source without an 'all' split
                pass
        if relation in ("changed", "overlap"):  # which of them the run saw is not known
            split = relation
    if len(ds) < 1:
        # data is --data or, without it, the run's own training data: name the folder, not a flag
        raise UserError(f"the real images of {data!r}: no image to evaluate (pass --data with at least 2, "
                        f"FID's least)")
    return ds, split, read


def _all_images(ds, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(ds) if limit is None else min(limit, len(ds))
    return ds.get_batch(torch.arange(n))


@torch.no_grad()
def latent_eval(model, config: ModelConfig, schedule: LODSchedule, phase: Phase, data: str | None = None,
                seed: int = 0, max_train: int | None = 20000, device="cpu") -> dict[str, Any] | None:
    """Latent classification (1-NN, LinearSVC C=0.02) of ``model``'s encoder on the data's train
    split, scored on its test split, beside randomly initialised encoders (the mean of
    ``RANDOM_ENCODERS`` initialisations seeded ``RANDOM_ENCODER_SEED + k``, the same for every
    ``seed``; ``report["random_encoder"]["seed"]`` records the first) and PCA of the same
    dimension; ``seed`` seeds LinearSVC and the samples; and, under
    ``"reconstruction_class"``, how many reconstructions G(E(x)) (no noise) of the test split a
    pixel 1-NN fitted on the train split gives the input's class (beside the originals'); and,
    under ``"sample_classes"``, the classes that 1-NN gives ``SAMPLE_COUNT`` EMA samples
    (:func:`alae_fast.eval.sample_class_histogram`). None when the data has no labelled test split (an image folder)."""
    from ..data import open_dataset
    from ..data.spec import data_spec
    from ..eval import latent_report, reconstruction_class_accuracy, sample_class_histogram

    if data_spec(data)["kind"] == "folder":  # no labels: opened, its training split would be read for nothing
        return None
    train = open_dataset(data, schedule.resolution, schedule.channels, split="train")
    try:
        test = open_dataset(data, schedule.resolution, schedule.channels, split="test")
    except (FileNotFoundError, ValueError):
        return None
    if test is train or not (_labelled(train) and _labelled(test)) or getattr(test, "split", None) != "test":
        return None
    xtr, ytr = _all_images(train, max_train)
    xte, yte = _all_images(test)
    xtr, xte = prepare_images(xtr, schedule, phase), prepare_images(xte, schedule, phase)

    def enc(m):
        return lambda x: m.encode(x.to(device), phase.lod, phase.blend)

    # built one at a time as latent_report reaches them: twenty whole models of a large preset
    # at once would hold twenty copies of G and F for nothing. They run in the trained model's
    # layout: channels_last halves the time of their small convolutions on the CPU (the twenty
    # are most of the report's time), and the trained encoder and its baselines then round alike.
    layout = memory_format_of(model)
    rands = (enc(random_model(config, RANDOM_ENCODER_SEED + k, device, layout)) for k in range(RANDOM_ENCODERS))
    report = latent_report(enc(model), xtr, ytr, xte, yte, random_encode=rands, pca=True, seed=seed)
    report["random_encoder"]["seed"] = RANDOM_ENCODER_SEED
    report["reconstruction_class"] = reconstruction_class_accuracy(
        lambda x: model.reconstruct(x.to(device), phase.lod, phase.blend, noise="zero").cpu(), xtr, ytr, xte, yte)
    g = torch.Generator().manual_seed(seed + SAMPLE_SEED)

    def sample(b):
        z = torch.randn(b, model.latent_size, generator=g).to(device)
        return model.generate(z, phase.lod, phase.blend, noise="zero").cpu()

    report["sample_classes"] = sample_class_histogram(sample, SAMPLE_COUNT, xtr, ytr)
    report["train_images"], report["test_images"] = int(xtr.shape[0]), int(xte.shape[0])
    return report


def identification_if_unlabelled(reconstructions: torch.Tensor, images: torch.Tensor,
                                 latent: dict | None) -> dict[str, float] | None:
    """``alae_fast.eval.reconstruction_identification`` of ``reconstructions`` (``[M, C, R, R]``,
    already computed) against ``images`` when the data have no labels (``latent``, what
    :func:`latent_eval` returned, is None) and there are M >= 2 images; else None.

    Unlabelled images have no class to keep; whether a reconstruction is still that image
    (rather than only its colour) is asked by matching it back to its input."""
    from ..eval import reconstruction_identification

    if latent is not None or images.shape[0] < 2:
        return None
    return reconstruction_identification(reconstructions, images)


def evaluate_model(run: LoadedRun, data: str | None = None, inception_weights: str | None = None,
                   num_fid: int | None = None, ppl_samples: int = 200, seed: int = 0, device="cpu",
                   refine_steps: int = 0, refine_space: str = "w", refine_lr: float = DEFAULT_REFINE_LR,
                   refine_images: int = DEFAULT_REFINE_IMAGES) -> dict[str, Any]:
    """All metrics of issue 6 for a loaded run, as a JSON-ready dict.

    - ``latent``: 1-NN and LinearSVC accuracy of E(x) vs random encoders (the mean of
      ``RANDOM_ENCODERS``) vs PCA (labelled data only);
    - ``data``: ``{"evaluated": data_spec(data), "trained_on": the run's recorded spec or None,
      "relation": data_relation(run, data), "split": the split of data read ("test", "train" or
      "all"), and for relation "overlap" "overlap": {"files": K, "of": N}}``
      (:mod:`alae_fast.data.spec`, :func:`data_relation_detail`);
    - ``reconstruction_mse``: on up to ``num_fid`` images, ``reconstruction_split`` saying which
      they are to this run (a key of :data:`SPLIT_LABELS`): of the run's own data, the held-out
      ones ("held-out"), else training images ("training"), or all, for a folder holding out
      fewer than 2 ("all"); of other data, all of it ("unseen"); of the run's folder changed
      since training, the held-out split as above, said "changed"; of a folder elsewhere
      holding some of the run's files (relation "overlap"), its held-out split, said
      "overlap" (``data["overlap"]``: ``{"files": K, "of": N}``, K of its N files having the
      path and size of one of the run's; :func:`split_label` words it); of a run that records no
      data (an official checkpoint), all of it, said "unrecorded";
    - ``reconstruction_identification``: for unlabelled data, how often a reconstruction is
      matched back to its own input among those images, beside the mean-colour baseline
      (``alae_fast.eval.reconstruction_identification``; None for labelled data);
    - ``fid_generated`` / ``fid_reconstructed``: Fréchet distance of ``num_fid`` generations and of
      the reconstructions against real images, with InceptionV3 when ``inception_weights`` is
      given, else the random-conv proxy (``fid_network`` names which; proxy values are not FIDs);
      With a single real image (a run trained on a one-image folder) FID cannot be taken:
      both are None, ``fid_skipped`` says why and ``fid_images`` counts 0 generated; every other
      metric is reported;
    - ``ppl_full`` / ``ppl_end``: perceptual path length in W, ε = 1e-4, with the proxy-LPIPS
      distance, ``ppl_samples`` pairs each.

    - ``reconstruction_refined`` (only with ``refine_steps`` >= 1, else absent): the same images'
      reconstructions from E(x) refined by ``refine_steps`` steps of descent on the pixel error in
      ``refine_space`` ("w" or "w+"), as
      :func:`~alae_fast.inference.projection.refined_reconstruction` gives them (not ALAE's own
      reconstruction: reported beside it).

    num_fid: None (default: ``DEFAULT_NUM_FID``, 1000, and where the real images are fewer, all of
    them, as ``fid_images`` records and the report's FID line says) or an int >= 2 (a RuntimeWarning
    when the real images are fewer than asked); ppl_samples: int >= 1; seed: int in [0, 2**63); device: as
    :func:`~alae_fast.inference.loading.check_device`; refine_steps: int in [0, 100000] (default
    0); refine_space: "w" (default) or "w+"; refine_lr: a number in (0, 1000] (default 0.05, Adam's);
    refine_images: an int >= 1, the first that many of the reconstructed images are refined
    (default 256). TypeError naming the argument for one of the wrong type (a float or string
    count, a non-number lr), ValueError for a bad value.
    """
    from ..eval import (feature_network, fid_generated, fid_reconstructed, perceptual_path_length,
                        proxy_lpips_distance, reconstruct_all, reconstruction_mse)
    from ..data.spec import data_spec
    from .loading import check_device, recorded_data_spec
    from .sampling import check_count, check_seed

    asked_fid = num_fid is not None
    num_fid = DEFAULT_NUM_FID if num_fid is None else check_count(num_fid, "num_fid", "evaluate_model",
                                                                  minimum=2)  # a covariance needs 2 images
    ppl_samples = check_count(ppl_samples, "ppl_samples", "evaluate_model")
    seed = check_seed(seed, "seed", "evaluate_model")
    device = check_device(device, "device")
    from .projection import check_refinement, refined_reconstruction
    refine_steps, refine_lr, refine_space = check_refinement(
        "evaluate_model", refine_steps, refine_lr, refine_space, ("refine_steps", "refine_lr", "refine_space"))
    refine_images = check_count(refine_images, "refine_images", "evaluate_model")

    schedule, phase, m = run.schedule, run.phase, run.model
    res = schedule.resolution
    out: dict[str, Any] = {"checkpoint": str(run.path), "setup": run.setup, "kimg": run.kimg,
                           "lod": phase.lod, "blend": phase.blend, "resolution": phase.resolution}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out["latent"] = latent_eval(m, run.config, schedule, phase, data, seed=seed, device=device)
        relation, overlap = data_relation_detail(run, data)
        real_ds, split, read = _real_images(data, res, schedule.channels, relation)
        out["data"] = {"evaluated": data_spec(data), "trained_on": recorded_data_spec(run), "relation": relation,
                       "split": read, **({"overlap": overlap} if overlap is not None else {})}
        x_real, _ = _all_images(real_ds, num_fid)
        x_real = prepare_images(x_real, schedule, phase)

        rec = reconstruct_all(lambda x: run.model.reconstruct(x.to(device), phase.lod, phase.blend, noise="zero"),
                              x_real)
        out["reconstruction_mse"] = reconstruction_mse(rec, x_real)
        out["reconstruction_images"] = int(x_real.shape[0])
        out["reconstruction_split"] = split
        out["reconstruction_identification"] = identification_if_unlabelled(rec, x_real, out["latent"])
        if refine_steps:
            out["reconstruction_refined"] = refined_reconstruction(
                m, x_real.to(device), phase.lod, phase.blend, steps=refine_steps, space=refine_space, lr=refine_lr,
                labelled=out["latent"] is not None, limit=refine_images)
        real_disp = to_display(x_real, res)
        n_gen = max(2, num_fid)
        if real_disp.shape[0] < 2:
            # A run trained on a one-image folder: FID compares covariances of sets of at least 2,
            # but the other metrics stand (its end-of-training report gave the reconstruction MSE)
            out["fid_generated"] = out["fid_reconstructed"] = None
            out["fid_skipped"] = (f"{data!r} gives 1 real image, and FID compares sets of at least 2 (it needs "
                                  f"their covariance)")
            out["fid_images"] = {"real": int(real_disp.shape[0]), "generated": 0}
        else:
            net = feature_network(inception_weights, device=device)
            out["fid_network"] = getattr(net, "name", type(net).__name__)
            out["fid_is_proxy"] = bool(getattr(net, "is_proxy", inception_weights is None))
        if "fid_skipped" not in out and asked_fid and real_disp.shape[0] < num_fid:
            # FID's bias grows as the sample shrinks; a figure from a few real images is not one a
            # reader would compare with others. The default asks for nothing: the report's FID
            # line says the counts instead (a warning on every run of the default job said only
            # that the default was the default)
            warnings.warn(f"FID against the {real_disp.shape[0]} real images there are, fewer than num_fid / "
                          f"--num-fid ({num_fid}): the estimate is strongly biased upward; compare it only with "
                          f"runs measured on the same images", RuntimeWarning, stacklevel=2)
        g = torch.Generator().manual_seed(seed + 1)

        def sample(n):
            z = torch.randn(n, m.latent_size, generator=g).to(device)
            return to_display(m.generate(z, phase.lod, phase.blend, noise="random"), res)

        if "fid_skipped" not in out:
            out["fid_generated"] = fid_generated(net, real_disp, sample, n_gen)
            out["fid_reconstructed"] = fid_reconstructed(net, real_disp, to_display(rec.float(), res))
            out["fid_images"] = {"real": int(real_disp.shape[0]), "generated": n_gen}
        dist = proxy_lpips_distance()

        def gen(w):
            return to_display(m.decode(w, phase.lod, phase.blend, noise="zero"), res)

        for sampling in ("full", "end"):
            r = perceptual_path_length(m.mapping, gen, dist, m.latent_size, num_samples=ppl_samples,
                                       sampling=sampling, seed=seed, device=device)
            out[f"ppl_{sampling}"] = r["ppl"]
        out["ppl_distance"] = "proxy-lpips (random conv features; not comparable with published PPL)"
    return out

"""Using a trained run: open a checkpoint, make pictures, compute and report the metrics.

Used by ``alae-fast train`` (its pictures and end-of-training report), ``generate``,
``reconstruct``, ``interpolate``, ``style-mix``, ``evaluate``, ``edit`` and ``serve``. Everything
works on the EMA copy of the networks (the one ALAE uses for all outputs), at the level of
detail and blend the checkpoint had reached. One module per question:

- :mod:`.loading`: open a checkpoint (:func:`load_run` -> :class:`LoadedRun`), convert an official one;
- :mod:`.pixels`: image files in, images at the run's level, images enlarged for display;
- :mod:`.sampling`: images from latents (samples, seeds, interpolations, style mixing);
- :mod:`.metrics`: latent classification and every ``evaluate`` metric;
- :mod:`.report`: those metrics as text;
- :mod:`.pictures`: PNG grids and images (Pillow);
- :mod:`.plots`: the loss-curve PNG (matplotlib, the optional ``[plot]`` extra).

Data flows one way: this package reads checkpoints with :mod:`alae_fast.training.checkpoint` and
levels of detail with :mod:`alae_fast.training.schedule`, and never imports the training loop.
"""

from .loading import CHECKPOINT_FORMAT, LoadedRun, convert_official, load_run, recorded_data_spec, run_data
from .metrics import evaluate_model, identification_if_unlabelled, latent_eval, random_model
from .pictures import make_grid, png_bytes, save_image, save_image_grid, save_labelled_grid, save_pairs_grid, to_uint8
from .pixels import load_image_files, prepare_images, to_display
from .plots import draw_loss_curves, plot_loss_curves, read_jsonl
from .report import format_latent_report
from .sampling import (NOISE_MODES, PSI_RANGE, generate_seeds, interpolate_latents, mix_ranges, sample_images,
                       seed_latent, style_mix_grid, style_mix_images, style_mix_tiles, style_ranges)

__all__ = ["CHECKPOINT_FORMAT", "LoadedRun", "convert_official", "load_run", "recorded_data_spec", "run_data",
           "evaluate_model", "identification_if_unlabelled", "latent_eval", "random_model", "format_latent_report",
           "make_grid", "png_bytes", "save_image", "save_image_grid", "save_labelled_grid", "save_pairs_grid",
           "to_uint8", "load_image_files", "prepare_images", "to_display",
           "draw_loss_curves", "plot_loss_curves", "read_jsonl",
           "NOISE_MODES", "PSI_RANGE", "generate_seeds", "interpolate_latents", "mix_ranges", "sample_images",
           "seed_latent", "style_mix_grid", "style_mix_images", "style_mix_tiles", "style_ranges"]

"""Images between files, the model's level of detail and the screen.

:func:`load_image_files` reads PNG/JPEG files at a run's resolution, :func:`prepare_images`
brings full-size images to the level a run reached, :func:`to_display` enlarges any level's
images back to full size for a picture.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError, check_regular_file, first_line
from ..models.base import check_images, check_pixel_values
from ..training.schedule import LODSchedule, Phase, blend_real_images, images_for_lod

__all__ = ["prepare_images", "to_display", "load_image_files"]

def prepare_images(x: torch.Tensor, schedule: LODSchedule, phase: Phase) -> torch.Tensor:
    """Full-resolution images as the model sees them at ``phase``: 2x2-average-pooled to the
    level's resolution and faded with its blend, as in training (``images_for_lod``,
    ``blend_real_images``).

    x: ``[N, C, R, R]``, ``R = schedule.resolution``, C the model's channels (1 is repeated to 3
    for a colour model), a float dtype, pixels in [-1, 1] (:func:`load_image_files` makes them
    from files). Returns ``[N, C, r, r]`` of x's dtype and device, ``r = phase.resolution``.

    TypeError for a non-tensor or a non-float dtype (uint8 images: ``x.float() / 127.5 - 1``);
    ValueError for another shape, resolution or channel count, NaN or infinity, or a value
    beyond +-``PIXEL_LIMIT`` (a 0..255 image given as floats), each naming ``prepare_images``.
    """
    check_images(x, "prepare_images")
    R = schedule.resolution
    if x.ndim != 4 or x.shape[-2:] != (R, R):
        raise ValueError(f"prepare_images: x must be images [N, C, {R}, {R}] (the run's resolution; "
                         f"load_image_files resizes files to it); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("prepare_images: x holds no image (shape [0, ...]); give at least one")
    if x.shape[1] == 1 and schedule.channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != schedule.channels:
        raise ValueError(f"prepare_images: x has {x.shape[1]} channels; the model takes {schedule.channels}")
    if not torch.isfinite(x).all():
        raise ValueError("prepare_images: x contains NaN or infinity")
    check_pixel_values(x, "prepare_images")
    return blend_real_images(images_for_lod(x, schedule, phase.lod), phase.blend)


def to_display(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images of any level enlarged (nearest) to ``resolution``, on the CPU, in float32."""
    x = x.detach().to("cpu", torch.float32)
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="nearest")
    return x


def load_image_files(paths: Sequence[str | os.PathLike] | str | os.PathLike, schedule: LODSchedule) -> torch.Tensor:
    """Image files (PNG/JPEG, or anything else Pillow decodes) center-cropped and resized to the
    run's resolution (:func:`alae_fast.data.load_image`): ``[N, C, R, R]`` float32 with pixels
    in [-1, 1] (0 -> -1, 255 -> 1). ``paths``: a list of paths, or one path (N = 1);
    ``schedule``: the run's (``run.schedule``). Images with transparent pixels are composited
    over black, colour images given to a greyscale run are converted and images smaller than
    the resolution enlarged, each kind with a ``RuntimeWarning`` naming the files.

    Raises TypeError for a ``schedule`` that is not an LODSchedule, FileNotFoundError for a
    missing file and :class:`~alae_fast.errors.UserError` for a folder, or a file Pillow cannot
    decode (not an image, truncated) or refuses as a decompression bomb
    (``PIL.Image.MAX_IMAGE_PIXELS``, twice over), naming the file."""
    from PIL import Image

    from ..data.folder import LoadNotes, PixelRangeError, load_image

    if not isinstance(schedule, LODSchedule):
        raise TypeError(f"load_image_files: schedule must be the run's LODSchedule (run.schedule); "
                        f"got {type(schedule).__name__}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one file, not the characters of its name
    if not paths:
        raise ValueError("load_image_files: paths must name at least one image file; got none")
    out, notes = [], LoadNotes()
    for p in paths:
        if Path(p).is_dir():
            raise UserError(f"image {str(p)!r} is a folder; give image files (e.g. {str(Path(p) / '*.png')})")
        check_regular_file(p, f"image {str(p)!r}", "; give an image file")
        try:
            arr = load_image(p, schedule.resolution, schedule.channels, notes=notes)
        except PixelRangeError as e:  # an image whose values the loading rule refuses: say why, whole
            # (its reason names the values, the range expected and what to do; never cut, and the
            # file is named once, by the path given)
            raise UserError(f"image {str(p)!r}: {e.reason}") from e
        except Image.DecompressionBombError as e:  # not an OSError: it would end in a traceback
            raise UserError(f"image {str(p)!r} is too large to decode safely ({first_line(e)})") from e
        except (OSError, SyntaxError, ValueError) as e:  # what Pillow raises for undecodable data
            raise UserError(f"image {str(p)!r} could not be read as an image ({first_line(e)})") from e
        out.append(torch.from_numpy(np.array(arr, dtype=np.float32)) / 127.5 - 1.0)
    for kind in LoadNotes.KINDS:
        if getattr(notes, kind):
            # RuntimeWarning: the category of the same notes from a data folder (ImageFolderDataset,
            # directions --data), so that one filter catches both
            warnings.warn(notes.message(kind, schedule.resolution, len(out), [str(p) for p in getattr(notes, kind)]),
                          RuntimeWarning, stacklevel=2)
    return torch.stack(out)

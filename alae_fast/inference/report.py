"""Text reports of the metrics, as training and ``alae-fast evaluate`` print them."""

from __future__ import annotations

import math
import statistics

__all__ = ["format_latent_report", "format_identification", "format_refined"]


def format_latent_report(report: dict, run_data: bool = True) -> str:
    """The latent-classification report as a small table (accuracies in percent).

    ``run_data``: whether the images are the run's own data (default), whose test split it
    held out; for other data (False) the splits are named as the classifier uses them (fitted
    on the train split, scored on the test split), none of them the run's."""
    test = "held-out" if run_data else "test-split"
    rows = [("EMA encoder (trained)", report["encoder"])]
    rnd = report.get("random_encoder")
    if rnd is not None:
        rows.append((f"random encoder (mean of {rnd['count']})" if "count" in rnd else "random encoder", rnd))
    if "pca" in report:
        rows.append((f"PCA ({report['pca'].get('dim', report['dim'])} components)", report["pca"]))
    where = "" if run_data else " on other data than the run's"
    lines = [f"latent classification{where}, {report.get('train_images', '?')} train / "
             f"{report.get('test_images', '?')} {test} images, latent dim {report['dim']}:",
             f"  {'':27s} {'1-NN':>7s} {'LinearSVC':>10s}"]
    for name, r in rows:
        lines.append(f"  {name:27s} {100 * r['knn1']:6.1f}% {100 * r['linear_svc']:9.1f}%")
    enc = report["encoder"]
    if rnd is not None and "knn1_each" in rnd:
        each = [100 * a for a in rnd["knn1_each"]]
        if len(each) <= 5:
            lines.append(f"  (random encoders one by one, 1-NN: {', '.join(f'{a:.1f}%' for a in each)})")
        else:
            # one draw varies by points, so how far the mean itself may be off is worth a line
            sd = statistics.stdev(each)
            lines.append(f"  (the {len(each)} random encoders, 1-NN: {min(each):.1f}% to {max(each):.1f}%, "
                         f"standard deviation {sd:.1f} points; their mean is uncertain by about "
                         f"{sd / math.sqrt(len(each)):.1f} points)")
    if rnd is not None:
        lines.append(f"  trained - random: {100 * (enc['knn1'] - rnd['knn1']):+.1f} points 1-NN, "
                     f"{100 * (enc['linear_svc'] - rnd['linear_svc']):+.1f} LinearSVC")
    if "pca" in report:
        lines.append(f"  trained - PCA:    {100 * (enc['knn1'] - report['pca']['knn1']):+.1f} points 1-NN, "
                     f"{100 * (enc['linear_svc'] - report['pca']['linear_svc']):+.1f} LinearSVC")
    rc = report.get("reconstruction_class")
    if rc is not None:
        lines.append(f"reconstructions G(E(x)) given the input's class by a pixel 1-NN: "
                     f"{100 * rc['reconstructions']:.1f}% (the {test} images themselves: {100 * rc['originals']:.1f}%)")
    sc = report.get("sample_classes")
    if sc is not None:
        lines.append(f"{sc['n']} EMA samples G(F(z)) by class (same 1-NN): " + ", ".join(
            f"{c}: {100 * f:.1f}%" for c, f in zip(sc["classes"], sc["fractions"]))
            + f" (least {100 * sc['min_fraction']:.1f}%)")
    return "\n".join(lines)


def format_identification(ident: dict, n: int, split: str) -> str:
    """One line for ``alae_fast.eval.reconstruction_identification``'s result on ``n`` ``split``
    images (``split``: what they are to the run, e.g. a value of
    :data:`~alae_fast.inference.metrics.SPLIT_LABELS`)."""
    return (f"reconstructions matched back to their own input among the {n} {split} images (pixel 1-NN): "
            f"{100 * ident['reconstructions']:.1f}% (keeping only each image's mean colour: "
            f"{100 * ident['mean_colour']:.1f}%; chance {100 * ident['chance']:.1f}%); the mean colour's "
            f"MSE: {ident['mean_colour_mse']:.4f}")


def format_refined(refined: dict, split: str) -> str:
    """Lines for :func:`~alae_fast.inference.projection.refined_reconstruction`'s result on
    ``split`` images (what they are to the run), said as what it is: not ALAE's G(E(x))."""
    n, of = refined["images"], refined.get("of", refined["images"])
    from .projection import DEFAULT_REFINE_LR

    # the default lr is the help's and the README's; another one is said in the line
    lr = "" if refined.get("lr", DEFAULT_REFINE_LR) == DEFAULT_REFINE_LR else f", lr {refined['lr']:g}"
    which = f"{n}" if n == of else f"the first {n} of {of}"
    line = (f"reconstruction MSE after refining E(x) by {refined['steps']} steps of descent on the pixel error "
            f"in {refined['space']}{lr} (not ALAE's G(E(x)): StyleGAN2's projector from the encoder) on {which} "
            f"{split} images: {refined['mse']:.4f}")
    if n != of:  # the G(E(x)) line above is over all of them: the figure to compare is on these
        line += f" (G(E(x)) on the same {n}: {refined['encoder_mse']:.4f})"
    ident = refined.get("identification")
    if ident is None:
        return line
    return (line + f"\n  refined, matched back to their own input (pixel 1-NN): {100 * ident['reconstructions']:.1f}% "
            f"(mean colour {100 * ident['mean_colour']:.1f}%, chance {100 * ident['chance']:.1f}%)")

"""Calibrate abrsim's rate-quality model against the envivio VMAF table in ../shared/videos/envivio.

Run by hand; tests never run it. It prints the fitted parameters (to paste into
``abrsim.encoding.RateQualityModel``'s defaults) and the fit errors:

    python tools/fit_quality_model.py

The model (``abrsim.encoding.RateQualityModel``):

    Q = Qmax(h) * (1 - exp(-(r / r_ref)^shape))
    r = bitrate * codec_efficiency / complexity
    r_ref = reference_bitrate * (w * h * fps / (1920 * 1080 * 30))^pixel_exponent
    Qmax(h) = 100 - upscaling_penalty * log2(display_height / h)^upscaling_exponent   (h < display)

The envivio title has six renditions, one bitrate per resolution, so the rung
means alone cannot separate the resolution ceiling from the rate term. The
per-segment scores help: segments of one title differ in how hard they are to
encode, which moves them along the rate axis. The fit therefore gives every
segment its own complexity c_s (geometric mean 1) and fits the four shape
parameters to all 48 x 6 scores; ``pixel_exponent`` is held at 0.5 (freeing it
sends it to its lower bound and makes low resolutions beat high ones at every
rate; 0.5 keeps the expected order: lower resolutions win below about 1 Mbit/s).
Then ``reference_bitrate`` is rescaled so that the title's rung means are best
fitted with complexity 1: complexity 1 means "as hard to encode as envivio".
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, minimize_scalar

from abrsim.encoding import RateQualityModel
from abrsim.ladder import read_size_csv

ENVIVIO = Path(__file__).resolve().parents[1].parent / "shared" / "videos" / "envivio"
# from ../shared/videos/envivio/README.md (the title's Manifest.mpd)
WIDTHS = np.array([320, 640, 768, 1024, 1280, 1920])
HEIGHTS = np.array([180, 360, 432, 576, 720, 1080])
FRAME_RATE_HZ = 30000 / 1001
PLAYED_CHUNKS = 48  # chunk 48 is the clip's short tail


def say(text: str) -> None:
    """Write one line to stdout (tools report with plain writes, not print)."""
    sys.stdout.write(text + "\n")


def model_from(parameters: np.ndarray) -> RateQualityModel:
    penalty, exponent, log_reference_mbps, shape = parameters
    return RateQualityModel(
        reference_bitrate_bps=float(np.exp(log_reference_mbps) * 1e6),
        shape=float(shape),
        upscaling_penalty=float(penalty),
        upscaling_exponent=float(exponent),
        pixel_exponent=0.5,
    )


def main() -> int:
    """Fit, print the parameters and the errors."""
    if not ENVIVIO.is_dir():
        sys.stderr.write(f"{ENVIVIO} not found\n")
        return 1
    ladder = read_size_csv(ENVIVIO / "chunk_sizes.csv", 4.0, quality_path=ENVIVIO / "vmaf.csv")
    assert ladder.quality is not None
    vmaf = ladder.quality[:PLAYED_CHUNKS]
    bitrates = ladder.bitrates_bps

    def predict(model: RateQualityModel, complexity: np.ndarray | float) -> np.ndarray:
        return model.quality(
            bitrates[None, :], WIDTHS[None, :], HEIGHTS[None, :], FRAME_RATE_HZ, "h264",
            complexity=np.asarray(complexity, dtype=np.float64).reshape(-1, 1),
        )

    def residuals(x: np.ndarray) -> np.ndarray:
        log_complexity = x[4:] - x[4:].mean()
        return (predict(model_from(x[:4]), np.exp(log_complexity)) - vmaf).ravel()

    start = np.concatenate([[10.0, 1.5, 0.0, 1.0], np.zeros(PLAYED_CHUNKS)])
    lower = [0.0, 0.5, np.log(0.05), 0.3] + [-3.0] * PLAYED_CHUNKS
    upper = [60.0, 3.0, np.log(10.0), 3.0] + [3.0] * PLAYED_CHUNKS
    fit = least_squares(residuals, start, bounds=(lower, upper))
    shape_model = model_from(fit.x[:4])
    title = minimize_scalar(
        lambda lc: float(np.mean((predict(shape_model, np.exp(lc))[0] - vmaf.mean(axis=0)) ** 2)),
        bounds=(-2.0, 2.0), method="bounded",
    )
    x = fit.x[:4].copy()
    x[2] += title.x  # complexity 1 = the envivio title
    model = model_from(x)
    segment_complexity = np.exp(fit.x[4:] - fit.x[4:].mean() - title.x)
    title_means = predict(model, 1.0)[0]
    per_segment = predict(model, segment_complexity)
    say("fitted RateQualityModel parameters (pixel_exponent fixed at 0.5):")
    say(f"  reference_bitrate_bps = {model.reference_bitrate_bps:.6g}")
    say(f"  shape                 = {model.shape:.6g}")
    say(f"  upscaling_penalty     = {model.upscaling_penalty:.6g}")
    say(f"  upscaling_exponent    = {model.upscaling_exponent:.6g}")
    say("rung means (VMAF), envivio vs model at complexity 1:")
    for k in range(bitrates.size):
        say(f"  {bitrates[k] / 1e3:6.0f} kbit/s {f'{WIDTHS[k]}x{HEIGHTS[k]}':>9s}  "
            f"data {vmaf[:, k].mean():6.2f}  model {title_means[k]:6.2f}")
    say("fit errors (VMAF points):")
    rmse_means = float(np.sqrt(np.mean((title_means - vmaf.mean(axis=0)) ** 2)))
    say(f"  rung means, title model (complexity 1):         RMSE {rmse_means:.2f}, "
        f"max {np.max(np.abs(title_means - vmaf.mean(axis=0))):.2f}")
    say(f"  all {vmaf.size} scores, title model (complexity 1):  RMSE "
        f"{np.sqrt(np.mean((title_means[None, :] - vmaf) ** 2)):.2f}")
    error = per_segment - vmaf
    say(f"  all {vmaf.size} scores, per-segment complexity:      RMSE "
        f"{np.sqrt(np.mean(error**2)):.2f}, max {np.max(np.abs(error)):.2f}")
    say(f"  segment complexity range {segment_complexity.min():.2f} to {segment_complexity.max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

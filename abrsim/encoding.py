"""Encoding models: segment sizes (CBR, VBR), a VMAF-like rate-quality model, and the per-title hull.

Pure functions of arrays and explicit ``numpy.random.Generator`` objects; the
:class:`~abrsim.ladder.Ladder`-level wrappers live in :mod:`abrsim.ladder`.

- :func:`cbr_size_bits` and :func:`vbr_size_bits` (with :class:`VbrModel`) make
  ``size_bits[segment, rung]`` tables for ladders whose source has no sizes.
- :class:`RateQualityModel` gives a VMAF-like score (0 to 100) of a rendition from
  its bitrate, resolution, frame rate and codec, calibrated on the envivio title
  (``tools/fit_quality_model.py``).
- :func:`upper_convex_hull` and :func:`select_rungs` pick a per-title ladder from
  rate-quality points (``abrsim.ladder.pertitle_ladder``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = [
    "CODEC_EFFICIENCY",
    "RateQualityModel",
    "VbrModel",
    "cbr_size_bits",
    "codec_family",
    "select_rungs",
    "upper_convex_hull",
    "vbr_size_bits",
]

# codec-string prefixes (RFC 6381 sample entries, as in DASH @codecs and HLS CODECS) -> codec family
_CODEC_PREFIXES = (
    (("avc1", "avc2", "avc3", "avc4", "h264"), "h264"),
    (("hvc1", "hev1", "hevc", "h265"), "hevc"),
    (("av01", "av1"), "av1"),
    (("vp09", "vp9"), "vp9"),
    (("vp08", "vp8"), "vp8"),
    (("vvc1", "vvi1", "vvc"), "vvc"),
)
_AUDIO_PREFIXES = ("mp4a", "ac-3", "ec-3", "ac-4", "opus", "flac", "mp3", "dtsc", "dtse", "alac")
_TEXT_PREFIXES = ("wvtt", "stpp", "tx3g", "c608")

CODEC_EFFICIENCY: Mapping[str, float] = MappingProxyType(
    {"h264": 1.0, "vp8": 1.0, "vp9": 1.4, "hevc": 1.6, "av1": 1.9, "vvc": 2.4}
)
"""Bitrate multiplier giving the H.264 bitrate of equal quality, per codec family.

Not fitted here (the calibration title is H.264 only): round values from
published codec comparisons, which put HEVC and VP9 at roughly 30 to 40 %, AV1 at
about 50 % and VVC at about 60 % fewer bits than H.264 for the same VMAF."""


def codec_family(codecs: str) -> str:
    """The video codec family of an RFC 6381 codecs string, e.g. ``"avc1.64001f,mp4a.40.2"`` -> ``"h264"``.

    Audio and subtitle entries are skipped; an unknown video codec keeps its
    first dotted field (``"xyz1.2"`` -> ``"xyz1"``); an empty or audio-only string
    gives ``""``.

    Example:
        >>> codec_family("hvc1.2.4.L123.B0"), codec_family("mp4a.40.2"), codec_family("AV01.0.08M.08")
        ('hevc', '', 'av1')
    """
    for entry in codecs.split(","):
        head = entry.strip().split(".")[0].lower()
        if not head or head.startswith(_AUDIO_PREFIXES + _TEXT_PREFIXES):
            continue
        for prefixes, family in _CODEC_PREFIXES:
            if head in prefixes:
                return family
        return head
    return ""


def cbr_size_bits(
    bitrates_bps: Sequence[float] | np.ndarray, segment_duration_s: float, segment_count: int
) -> np.ndarray:
    """Constant-bitrate sizes: every segment of rung ``r`` is ``bitrates_bps[r] * segment_duration_s`` bits.

    Returns:
        ``size_bits[segment, rung]``.

    Raises:
        ValueError: if ``segment_count`` < 1.
    """
    if int(segment_count) < 1:
        raise ValueError(f'"segment_count" must be >= 1, got {segment_count!r}')
    bitrates = np.asarray(bitrates_bps, dtype=np.float64)
    return np.tile(bitrates * float(segment_duration_s), (int(segment_count), 1))


@dataclass(frozen=True)
class VbrModel:
    """A seeded model of variable-bitrate segment sizes, calibrated on three real titles.

    ``size[s, r] = bitrate[r] * duration * exp(sigma * u[s, r]) / mean_s(...)``, where
    ``u`` is Gaussian with unit variance, correlated across rungs (correlation
    ``rung_correlation ** |r - r'|``, since an encoder meets the same hard and easy
    scenes at every rung) and across segments (lag-1 correlation
    ``segment_autocorrelation``; negative, as rate control pays back an expensive
    segment with cheaper ones). ``sigma`` is the title's variation, the per-title
    complexity of the model: given, or drawn for each title as
    ``median_variation * exp(variation_spread * N(0, 1))``. Each rung's column is
    then rescaled so that its mean bitrate equals the nominal bitrate exactly.

    Calibration (standard deviation of log segment size within a rung; lag-1
    correlation over segments; correlation of adjacent rungs): envivio (Pensieve,
    4 s H.264 segments) 0.05 to 0.11, -0.3 to 0.0, 0.90; Big Buck Bunny (Sabre,
    3 s, 10 rungs) 0.18 to 0.25, -0.44 to -0.15, 0.88; Big Buck Bunny 4K 0.18 to
    0.22, -0.44 to -0.15, 0.84.

    Args:
        variation: the title's standard deviation of log segment size (about the
            coefficient of variation of sizes), >= 0; None draws it per title.
        median_variation: median of the per-title draw, > 0.
        variation_spread: standard deviation of the log of the per-title draw, >= 0.
        rung_correlation: correlation of adjacent rungs' variations, in [0, 1].
        segment_autocorrelation: lag-1 correlation over segments, in (-1, 1).
    """

    variation: float | None = None
    median_variation: float = 0.14
    variation_spread: float = 0.4
    rung_correlation: float = 0.87
    segment_autocorrelation: float = -0.3

    def __post_init__(self) -> None:
        if self.variation is not None and not (np.isfinite(self.variation) and self.variation >= 0):
            raise ValueError(f'"variation" must be finite and >= 0, got {self.variation!r}')
        if not (np.isfinite(self.median_variation) and self.median_variation > 0):
            raise ValueError(f'"median_variation" must be finite and > 0, got {self.median_variation!r}')
        if not (np.isfinite(self.variation_spread) and self.variation_spread >= 0):
            raise ValueError(f'"variation_spread" must be finite and >= 0, got {self.variation_spread!r}')
        if not (0 <= self.rung_correlation <= 1):
            raise ValueError(f'"rung_correlation" must be in [0, 1], got {self.rung_correlation!r}')
        if not (-1 < self.segment_autocorrelation < 1):
            raise ValueError(
                f'"segment_autocorrelation" must be in (-1, 1), got {self.segment_autocorrelation!r}'
            )


def vbr_size_bits(
    bitrates_bps: Sequence[float] | np.ndarray,
    segment_duration_s: float,
    segment_count: int,
    rng: np.random.Generator,
    model: VbrModel | None = None,
) -> np.ndarray:
    """Variable-bitrate sizes drawn from :class:`VbrModel`; each rung's mean bitrate is its nominal one.

    Args:
        bitrates_bps: nominal bitrate of each rung, bit/s; > 0.
        segment_duration_s: segment duration, seconds; > 0.
        segment_count: number of segments; >= 1.
        rng: the source of all randomness.
        model: the model; default ``VbrModel()``.

    Returns:
        ``size_bits[segment, rung]``, all > 0, with
        ``size_bits[:, r].mean() == bitrates_bps[r] * segment_duration_s`` (to rounding).

    Raises:
        ValueError: if an argument is out of range.

    Example:
        >>> sizes = vbr_size_bits([1e6, 3e6], 4.0, 100, np.random.default_rng(1))
        >>> np.allclose(sizes.mean(axis=0), [4e6, 12e6])
        True
    """
    vbr = VbrModel() if model is None else model
    bitrates = np.asarray(bitrates_bps, dtype=np.float64)
    if bitrates.ndim != 1 or bitrates.size == 0 or not np.all(np.isfinite(bitrates) & (bitrates > 0)):
        raise ValueError(
            f'"bitrates_bps" must be a non-empty sequence of finite values > 0, got {bitrates_bps!r}'
        )
    if not (np.isfinite(segment_duration_s) and segment_duration_s > 0):
        raise ValueError(f'"segment_duration_s" must be finite and > 0, got {segment_duration_s!r}')
    count = int(segment_count)
    if count < 1:
        raise ValueError(f'"segment_count" must be >= 1, got {segment_count!r}')
    sigma = (
        vbr.median_variation * math.exp(vbr.variation_spread * rng.standard_normal())
        if vbr.variation is None
        else vbr.variation
    )
    rho, phi = vbr.rung_correlation, vbr.segment_autocorrelation
    noise = rng.standard_normal((count, bitrates.size))
    across = np.empty_like(noise)  # AR(1) across rungs: unit variance, correlation rho^|r - r'|
    across[:, 0] = noise[:, 0]
    for rung in range(1, bitrates.size):
        across[:, rung] = rho * across[:, rung - 1] + math.sqrt(1 - rho**2) * noise[:, rung]
    shared = np.empty_like(across)  # AR(1) over segments, keeping the cross-rung correlation
    shared[0] = across[0]
    for segment in range(1, count):
        shared[segment] = phi * shared[segment - 1] + math.sqrt(1 - phi**2) * across[segment]
    relative = np.exp(sigma * shared)
    relative /= relative.mean(axis=0)
    return np.asarray(relative * bitrates * float(segment_duration_s), dtype=np.float64)


def _default_efficiency() -> Mapping[str, float]:
    return CODEC_EFFICIENCY


@dataclass(frozen=True)
class RateQualityModel:
    """A VMAF-like quality (0 to 100) of a rendition from its bitrate, resolution, frame rate and codec.

    ``Q = Qmax(h) * (1 - exp(-(r / r_ref) ** shape))`` with

    - ``r = bitrate * codec_efficiency[codec] / complexity`` (the H.264-equivalent
      bitrate, scaled by how hard the content is to encode; complexity 1 is the
      calibration title),
    - ``r_ref = reference_bitrate_bps * (w * h * fps / (1920 * 1080 * 30)) ** pixel_exponent``
      (more pixels need more bits),
    - ``Qmax(h) = 100 - upscaling_penalty * log2(display_height / h) ** upscaling_exponent``
      for ``h < display_height``, else 100 (the loss of upscaling a small picture to
      the display; clipped at 0).

    Curves of different resolutions cross, as measured ones do: low resolutions
    win at low bitrates, high ones at high bitrates, which is what a per-title
    convex hull exploits (Netflix, "Per-Title Encode Optimization", 2015; De Cock
    et al., "Complexity-based consistent-quality encoding in the cloud", ICIP 2016).

    The defaults are fitted (``tools/fit_quality_model.py``) to the per-segment VMAF
    of the envivio title (Pensieve's test video, scores from Comyco; six H.264
    renditions 320x180 at 300 kbit/s to 1920x1080 at 4.3 Mbit/s): RMSE 1.4 VMAF on
    the six rung means and 3.5 on all 288 per-segment scores with one complexity
    per segment. ``pixel_exponent`` is fixed at 0.5, not fitted (one bitrate per
    resolution cannot identify it); the codec efficiencies are literature values
    (:data:`CODEC_EFFICIENCY`). The envivio top rung scores 99.97, so its VMAF
    was probably computed against that rendition: absolute scores near the top
    are optimistic.

    Args:
        reference_bitrate_bps: bitrate scale of a 1080p30 H.264 rendition at complexity 1, bit/s.
        shape: steepness of the rate curve, > 0.
        pixel_exponent: how the bitrate scale grows with pixels per second, >= 0.
        upscaling_penalty: VMAF points lost at half the display height, >= 0.
        upscaling_exponent: growth of the loss with octaves below the display height, > 0.
        display_height: the display's height in pixels (1080: VMAF's default model).
        codec_efficiency: per codec family, the H.264-equivalent bitrate multiplier.
    """

    reference_bitrate_bps: float = 1.361e6
    shape: float = 1.250
    pixel_exponent: float = 0.5
    upscaling_penalty: float = 10.83
    upscaling_exponent: float = 1.964
    display_height: int = 1080
    codec_efficiency: Mapping[str, float] = field(default_factory=_default_efficiency)

    def __post_init__(self) -> None:
        for name in ("reference_bitrate_bps", "shape", "upscaling_exponent"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f'"{name}" must be finite and > 0, got {value!r}')
        for name in ("pixel_exponent", "upscaling_penalty"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f'"{name}" must be finite and >= 0, got {value!r}')
        if not (isinstance(self.display_height, (int, np.integer)) and self.display_height > 0):
            raise ValueError(f'"display_height" must be an integer > 0, got {self.display_height!r}')
        object.__setattr__(self, "codec_efficiency", MappingProxyType(dict(self.codec_efficiency)))

    def efficiency(self, codec: str) -> float:
        """The bitrate multiplier of a codec family (or codecs string).

        Raises:
            ValueError: if the codec family is not in ``codec_efficiency``.
        """
        family = codec_family(codec) or codec.lower()
        if family not in self.codec_efficiency:
            known = ", ".join(sorted(self.codec_efficiency))
            raise ValueError(f"no efficiency for codec {codec!r}; expected one of: {known}")
        return float(self.codec_efficiency[family])

    def ceiling(self, height: float | np.ndarray) -> np.ndarray:
        """``Qmax``: the best quality a rendition of this height reaches on the display."""
        octaves = np.maximum(np.log2(self.display_height / np.asarray(height, dtype=np.float64)), 0.0)
        return np.clip(100.0 - self.upscaling_penalty * octaves**self.upscaling_exponent, 0.0, 100.0)

    def quality(
        self,
        bitrate_bps: float | np.ndarray,
        width: float | np.ndarray | None,
        height: float | np.ndarray,
        frame_rate_hz: float | np.ndarray | None = 30.0,
        codec: str = "h264",
        complexity: float | np.ndarray = 1.0,
    ) -> np.ndarray:
        """The model's quality, broadcasting over the array arguments.

        Args:
            bitrate_bps: bitrate, bit/s; > 0.
            width: picture width, pixels; None: 16:9 of ``height``.
            height: picture height, pixels; > 0.
            frame_rate_hz: frames per second; None: 30.
            codec: codec family or codecs string (see :func:`codec_family`).
            complexity: how hard the content is to encode relative to the
                calibration title (1); > 0.

        Returns:
            Quality in [0, 100].

        Raises:
            ValueError: if a value is out of range or the codec is unknown.

        Example:
            >>> model = RateQualityModel()
            >>> low, high = model.quality(500e3, None, [360, 1080]), model.quality(8e6, None, [360, 1080])
            >>> bool(low[0] > low[1]) and bool(high[1] > high[0])
            True
        """
        bitrate = np.asarray(bitrate_bps, dtype=np.float64)
        heights = np.asarray(height, dtype=np.float64)
        widths = heights * 16 / 9 if width is None else np.asarray(width, dtype=np.float64)
        fps = np.asarray(30.0 if frame_rate_hz is None else frame_rate_hz, dtype=np.float64)
        hardness = np.asarray(complexity, dtype=np.float64)
        for name, values in (
            ("bitrate_bps", bitrate),
            ("width", widths),
            ("height", heights),
            ("frame_rate_hz", fps),
            ("complexity", hardness),
        ):
            if not np.all(np.isfinite(values) & (values > 0)):
                raise ValueError(f'"{name}" must be finite and > 0, got {values!r}')
        rate = bitrate * self.efficiency(codec) / hardness
        pixel_rate = widths * heights * fps / (1920 * 1080 * 30)
        scale = self.reference_bitrate_bps * pixel_rate**self.pixel_exponent
        quality = self.ceiling(heights) * -np.expm1(-((rate / scale) ** self.shape))
        return np.asarray(quality, dtype=np.float64)


def upper_convex_hull(
    bitrates_bps: Sequence[float] | np.ndarray, qualities: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Indices of the points on the upper convex hull of quality against bitrate, by increasing bitrate.

    The hull is the concave envelope in the (bitrate, quality) plane, the
    operating points a rate-distortion optimiser can reach; it stops at the
    point of highest quality (no rung may cost more and look worse). Of points
    with equal bitrate only the best counts.

    Raises:
        ValueError: if the arrays differ in length, are empty, or hold non-finite values.

    Example:
        >>> upper_convex_hull([1, 2, 3, 4, 5], [10, 30, 35, 50, 49]).tolist()
        [0, 1, 3]
    """
    rates = np.asarray(bitrates_bps, dtype=np.float64)
    scores = np.asarray(qualities, dtype=np.float64)
    if rates.ndim != 1 or rates.shape != scores.shape or rates.size == 0:
        raise ValueError(
            f"need two equal-length, non-empty 1-d arrays, got shapes {rates.shape} and {scores.shape}"
        )
    if not (np.all(np.isfinite(rates)) and np.all(np.isfinite(scores))):
        raise ValueError("bitrates and qualities must be finite")
    order = np.lexsort((-scores, rates))  # by bitrate, best quality first among equal bitrates
    hull: list[int] = []
    for index in order:
        if hull and rates[index] == rates[hull[-1]]:
            continue
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (rates[b] - rates[a]) * (scores[index] - scores[a]) - (scores[b] - scores[a]) * (
                rates[index] - rates[a]
            )
            if cross >= 0:  # b lies on or below the chord from a to index
                hull.pop()
            else:
                break
        hull.append(int(index))
    best = int(np.argmax(scores[hull]))
    return np.array(hull[: best + 1], dtype=np.int64)


def select_rungs(
    bitrates_bps: Sequence[float] | np.ndarray,
    qualities: Sequence[float] | np.ndarray,
    *,
    rung_count: int | None = None,
    quality_step: float | None = None,
) -> np.ndarray:
    """Choose rungs among hull points given by increasing bitrate (and quality).

    Exactly one rule applies:

    - ``rung_count``: the lowest point, the highest point, and between them the
      points nearest to bitrates evenly spaced on a log scale (no point twice);
    - ``quality_step``: from the lowest point, each next rung is the first point at
      least ``quality_step`` better than the previous rung (e.g. 6 VMAF, about one
      just-noticeable difference); the highest point is always a rung.

    Returns:
        Indices into the given points, increasing.

    Raises:
        ValueError: if neither or both rules are given, a value is out of range, or
            there are fewer points than ``rung_count``.

    Example:
        >>> select_rungs([1e5, 2e5, 4e5, 8e5, 1.6e6], [20, 40, 60, 75, 85], rung_count=3).tolist()
        [0, 2, 4]
    """
    rates = np.asarray(bitrates_bps, dtype=np.float64)
    scores = np.asarray(qualities, dtype=np.float64)
    if (rung_count is None) == (quality_step is None):
        raise ValueError("give exactly one of rung_count and quality_step")
    if rates.size == 0:
        raise ValueError("no points to choose rungs from")
    if rung_count is not None:
        if isinstance(rung_count, bool) or int(rung_count) != rung_count or rung_count < 1:
            raise ValueError(f'"rung_count" must be an integer >= 1, got {rung_count!r}')
        if rung_count > rates.size:
            raise ValueError(f"the hull has only {rates.size} points; expected at least {rung_count}")
        if rung_count == 1:
            return np.array([rates.size - 1])
        chosen: list[int] = []
        targets = np.exp(np.linspace(np.log(rates[0]), np.log(rates[-1]), int(rung_count)))
        for k, target in enumerate(targets):
            # leave room for the rungs still to come, and never pick a point twice
            low = chosen[-1] + 1 if chosen else 0
            high = rates.size - (int(rung_count) - k)
            window = np.arange(low, high + 1)
            chosen.append(int(window[np.argmin(np.abs(np.log(rates[window] / target)))]))
        return np.array(chosen)
    assert quality_step is not None
    if not (np.isfinite(quality_step) and quality_step > 0):
        raise ValueError(f'"quality_step" must be finite and > 0, got {quality_step!r}')
    chosen = [0]
    for index in range(1, rates.size):
        if scores[index] >= scores[chosen[-1]] + quality_step:
            chosen.append(index)
    if chosen[-1] != rates.size - 1:
        chosen.append(rates.size - 1)
    return np.array(chosen)

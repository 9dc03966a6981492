"""Ladders from streaming manifests: DASH MPDs and HLS master playlists, read from files only.

:func:`read_dash_mpd` and :func:`read_hls_playlist` (or :func:`read_manifest`,
which tells them apart) turn a manifest into a :class:`~abrsim.ladder.Ladder`:
one rung per video representation or variant, the segment duration and count,
and per-segment sizes when the manifest carries them (DASH ``SegmentList`` byte
ranges, HLS ``EXT-X-BYTERANGE`` or ``EXT-X-BITRATE``), else sizes from a model
(CBR, or the seeded VBR model of :mod:`abrsim.encoding`).

Nothing is ever fetched: remote URIs are ignored, and XML is parsed with
expat without resolving external entities; a document type declaration that
declares entities or names an external DTD is refused. Every problem is one
:class:`~abrsim.errors.InputError` naming the file, the line and the element
or tag.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.dom import minidom
from xml.parsers import expat

import numpy as np

from abrsim import limits
from abrsim.encoding import VbrModel, cbr_size_bits, codec_family, vbr_size_bits
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import MAX_SEGMENT_DURATION_S, SIZE_MODELS, Ladder, Rung, check_segment_duration_s

__all__ = [
    "DEFAULT_DURATION_S",
    "ManifestImport",
    "import_manifest",
    "parse_iso8601_duration",
    "read_dash_mpd",
    "read_hls_playlist",
    "read_manifest",
]

DEFAULT_DURATION_S = 600.0
"""Title length assumed for an HLS master playlist without readable media playlists, seconds."""

MANIFEST_FORMATS = ("dash", "hls")


@dataclass(frozen=True)
class ManifestImport:
    """A ladder read from a manifest, with notes on where each part came from.

    Attributes:
        ladder: the ladder.
        format: ``"dash"`` or ``"hls"``.
        sizes_from: ``"manifest"`` (per-segment sizes in the manifest), ``"cbr"`` or ``"vbr"``.
        notes: one line per decision the import made (skipped renditions, assumptions).
    """

    ladder: Ladder
    format: str
    sizes_from: str
    notes: tuple[str, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------------------------------
# Shared pieces


def _read_bytes(path: Path) -> bytes:
    limits.check_file_size("input_bytes", path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found; expected a manifest", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror}); expected a manifest", source=path) from None
    if not data.strip():
        raise InputError("the file is empty; expected a manifest", source=path)
    return data


_ISO_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_iso8601_duration(text: str) -> float:
    """Seconds of an ISO 8601 duration as used in MPDs (``xs:duration``), e.g. ``PT1H2M3.5S``.

    Days count 86400 s. Years and months have no fixed length, so they are
    refused, as are negative durations.

    Raises:
        ValueError: if ``text`` is not such a duration.

    Example:
        >>> parse_iso8601_duration("PT1H2M3.5S"), parse_iso8601_duration("P1DT0.25S")
        (3723.5, 86400.25)
    """
    value = text.strip()
    match = _ISO_DURATION.match(value)
    if not match or value in ("P", "PT") or value.endswith("T"):
        raise ValueError(f"found {text!r}; expected an ISO 8601 duration such as 'PT1H2M3.5S'")
    if match["sign"]:
        raise ValueError(f"found {text!r}; expected a duration >= 0")
    if match["years"] or match["months"]:
        raise ValueError(f"found {text!r}; years and months have no fixed length, expected days or less")
    parts = {k: float(v) for k, v in match.groupdict().items() if v and k != "sign"}
    return (
        parts.get("days", 0.0) * 86400
        + parts.get("hours", 0.0) * 3600
        + parts.get("minutes", 0.0) * 60
        + parts.get("seconds", 0.0)
    )


def _sizes(
    bitrates_bps: list[float], segment_duration_s: float, segment_count: int, size_model: str, seed: int,
    variation: float | None,
) -> np.ndarray:
    if size_model == "vbr":
        model = VbrModel(variation=variation)
        rng = np.random.default_rng(seed)
        return vbr_size_bits(bitrates_bps, segment_duration_s, segment_count, rng, model)
    return cbr_size_bits(bitrates_bps, segment_duration_s, segment_count)


def _check_options(size_model: str, segment_duration_s: float | None, duration_s: float | None) -> None:
    if size_model not in SIZE_MODELS:
        raise UnknownNameError("size model", size_model, SIZE_MODELS)
    for name, value in (("segment_duration_s", segment_duration_s), ("duration_s", duration_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"expected a finite number > 0, found {value!r}", field=name)


def _typical(durations_s: Sequence[float]) -> float:
    """The segment duration of a list of segments: the most common one (the last is often shorter)."""
    values, counts = np.unique(np.round(np.asarray(durations_s, dtype=np.float64), 6), return_counts=True)
    return float(values[np.argmax(counts)])


@dataclass
class _Rendition:
    """One video rendition found in a manifest, with where it was found."""

    bitrate_bps: float
    width: int | None
    height: int | None
    codec: str
    frame_rate_hz: float | None
    where: str  # e.g. "Representation id='720p'" or "EXT-X-STREAM-INF"
    line: int | None
    segment_durations_s: list[float] | None = None
    segment_sizes_bytes: list[float] | None = None
    segments_where: tuple[Path, int | None, str] | None = None  # file, line, element: for count mismatches


def _build(
    source: Path,
    renditions: list[_Rendition],
    *,
    fmt: str,
    segment_duration_s: float | None,
    duration_s: float | None,
    size_model: str,
    seed: int,
    variation: float | None,
    notes: list[str],
    name: str | None,
    description: str,
) -> ManifestImport:
    """Sort renditions, check them against each other and make the ladder."""
    renditions = sorted(renditions, key=lambda r: r.bitrate_bps)
    for lower, upper in itertools.pairwise(renditions):
        if upper.bitrate_bps == lower.bitrate_bps:
            raise InputError(
                f"{upper.where} has the same bandwidth, {upper.bitrate_bps:g} bit/s, as {lower.where}"
                f"{'' if lower.line is None else f' on line {lower.line}'}; expected distinct bitrates "
                "(choose one codec with codec=...)",
                source=source,
                line=upper.line,
                field=upper.where,
            )
    with_segments = [r for r in renditions if r.segment_durations_s is not None]
    if with_segments:
        first = with_segments[0]
        assert first.segment_durations_s is not None
        for other in with_segments[1:]:
            assert other.segment_durations_s is not None
            assert other.segments_where is not None
            if len(other.segment_durations_s) != len(first.segment_durations_s):
                where_file, where_line, where = other.segments_where
                raise InputError(
                    f"{where} has {len(other.segment_durations_s)} segments but {first.where} has "
                    f"{len(first.segment_durations_s)}; expected the same segment count in every rendition",
                    source=where_file,
                    line=where_line,
                    field=where,
                )
        count = len(first.segment_durations_s)
        typical_s = _typical(first.segment_durations_s)
        if not typical_s <= MAX_SEGMENT_DURATION_S:
            where_file, where_line, where = first.segments_where
            raise InputError(f"its segments last {typical_s:g} s; expected at most "
                             f"{MAX_SEGMENT_DURATION_S:g} s (about 11.6 days; a duration in the wrong "
                             "timescale?)", source=where_file, line=where_line, field=where)
        if segment_duration_s is not None and abs(segment_duration_s - typical_s) > 1e-3:
            notes.append(
                f"segment duration {segment_duration_s:g} s as given (the manifest has {typical_s:g} s)"
            )
            typical_s = segment_duration_s
        if duration_s is not None:
            notes.append(f"duration_s ignored: the manifest lists {count} segments")
    else:
        if segment_duration_s is None:
            raise InputError(
                "found no segment durations (no segment template, timeline or list, or media playlist); "
                "expected segment_duration_s to be given (--segment-duration-s)",
                source=source,
                field="segment_duration_s",
            )
        check_segment_duration_s(segment_duration_s, "--segment-duration-s")
        typical_s = segment_duration_s
        title_s = DEFAULT_DURATION_S if duration_s is None else duration_s
        if duration_s is None:
            notes.append(f"title length unknown: assumed {DEFAULT_DURATION_S:g} s (give duration_s)")
        limits.check("segments", title_s / typical_s, "segments in the title (duration / segment duration)",
                     source=source, field="duration_s" if duration_s is not None else "segment_duration_s")
        count = max(1, math.ceil(title_s / typical_s - 1e-9))
    bitrates = [r.bitrate_bps for r in renditions]
    sized = [r for r in renditions if r.segment_sizes_bytes is not None]
    if sized and len(sized) == len(renditions):
        size_bits = np.array([r.segment_sizes_bytes for r in renditions], dtype=np.float64).T * 8.0
        sizes_from = "manifest"
        bad = np.argwhere(~(size_bits > 0))
        if bad.size:
            segment, rung = (int(v) for v in bad[0])
            raise InputError(
                f"segment {segment} of {renditions[rung].where} has size 0; expected bytes > 0",
                source=source,
                field=renditions[rung].where,
            )
    else:
        if sized:
            notes.append("per-segment sizes are given for some renditions only: not used")
        size_bits = _sizes(bitrates, typical_s, count, size_model, seed, variation)
        sizes_from = size_model
        notes.append(f"segment sizes: {size_model.upper()} model (the manifest carries no per-segment sizes)")
    rungs = []
    unknown = [r.where for r in renditions if not r.codec]
    if unknown:
        notes.append(f"no codecs given for {len(unknown)} rendition(s): assumed h264")
    for rendition in renditions:
        try:
            rungs.append(
                Rung(rendition.bitrate_bps, rendition.width, rendition.height, rendition.codec or "h264",
                     rendition.frame_rate_hz)
            )
        except ValueError as exc:
            raise InputError(str(exc), source=source, line=rendition.line, field=rendition.where) from None
    try:
        ladder = Ladder(
            tuple(rungs),
            typical_s,
            size_bits,
            name=source.stem if name is None else name,
            description=description,
        )
    except ValueError as exc:
        raise InputError(str(exc), source=source) from None
    return ManifestImport(ladder, fmt, sizes_from, tuple(notes))


# ------------------------------------------------------------------------------------------
# DASH


#: Deepest element nesting an MPD may have (real ones have about 6 levels); deeper is refused.
MAX_XML_DEPTH = 100


class _Xml:
    """A parsed XML document with the line of every element, parsed without external entities."""

    def __init__(self, source: Path, data: bytes) -> None:
        self.source = source
        starts: list[int] = []
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

        def refuse_entity(name: str, *args: Any) -> None:
            raise InputError(
                f"found a declaration of entity {name!r}; expected no entity declarations "
                "(entities are not expanded, for safety)",
                source=source,
                line=parser.CurrentLineNumber,
                field="DOCTYPE",
            )

        def doctype(name: str, system_id: str | None, public_id: str | None, internal: int) -> None:
            if system_id:
                raise InputError(
                    f"found a document type with an external DTD {system_id!r}; expected none "
                    "(nothing is fetched)",
                    source=source,
                    line=parser.CurrentLineNumber,
                    field="DOCTYPE",
                )

        def external(context: str, base: str, system_id: str, public_id: str) -> int:
            raise InputError(
                f"found a reference to an external entity {system_id!r}; expected none (nothing is fetched)",
                source=source,
                line=parser.CurrentLineNumber,
                field="DOCTYPE",
            )

        parser.EntityDeclHandler = refuse_entity
        parser.UnparsedEntityDeclHandler = refuse_entity
        parser.StartDoctypeDeclHandler = doctype
        parser.ExternalEntityRefHandler = external
        depth = [0]

        def start(name: str, attributes: Any) -> None:
            depth[0] += 1
            if depth[0] > MAX_XML_DEPTH:
                raise InputError(
                    f"found elements nested more than {MAX_XML_DEPTH} deep; expected a manifest's few levels",
                    source=source,
                    line=parser.CurrentLineNumber,
                )
            starts.append(parser.CurrentLineNumber)

        def end(name: str) -> None:
            depth[0] -= 1

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        try:
            parser.Parse(data, True)
            # safe now: no entity declarations, no external DTD (minidom also checks namespaces, which
            # the first pass does not: an xmlns URI with a tab in it fails only here)
            self.document = minidom.parseString(data)
        except expat.ExpatError as exc:
            raise InputError(
                f"malformed XML: {expat.errors.messages[exc.code]}; expected a well-formed MPD",
                source=source,
                line=exc.lineno,
            ) from None
        except LookupError as exc:  # <?xml encoding="..."?> naming no codec Python knows
            raise InputError(f"malformed XML: {exc}; expected UTF-8 or another known encoding", source=source,
                             line=1) from None
        elements = list(_walk(self.document.documentElement))
        self.lines = {id(node): line for node, line in zip(elements, starts, strict=True)}

    def line(self, node: minidom.Element) -> int | None:
        """The 1-based line of an element's start tag."""
        return self.lines.get(id(node))

    def error(self, node: minidom.Element, message: str) -> InputError:
        """An :class:`InputError` at an element."""
        return InputError(message, source=self.source, line=self.line(node), field=_describe(node))


def _walk(node: minidom.Element) -> Any:
    yield node
    for child in node.childNodes:
        if child.nodeType == child.ELEMENT_NODE:
            yield from _walk(child)


def _local(node: minidom.Node) -> str:
    return str(node.localName or node.nodeName)


def _children(node: minidom.Element, name: str) -> list[minidom.Element]:
    """Child elements of one name, as mpegdash finds them."""
    return [c for c in node.childNodes if c.nodeType == c.ELEMENT_NODE and _local(c) == name]


def _describe(node: minidom.Element) -> str:
    name = _local(node)
    for key in ("id", "bandwidth", "contentType", "mimeType"):
        if node.hasAttribute(key):
            return f"{name} {key}={node.getAttribute(key)!r}"
    return name


# attributes mpegdash converts with int(): checked first, so that a bad value is reported with its line
_DASH_INTEGER_ATTRIBUTES = {
    "Representation": ("bandwidth", "width", "height", "qualityRanking", "startWithSAP"),
    "AdaptationSet": (
        "id", "width", "height", "minBandwidth", "maxBandwidth", "minWidth", "maxWidth", "minHeight",
        "maxHeight", "startWithSAP", "selectionPriority", "subsegmentStartsWithSAP",
    ),
    "SegmentTemplate": ("timescale", "duration", "startNumber", "endNumber", "presentationTimeOffset"),
    "SegmentList": ("timescale", "duration", "startNumber", "endNumber", "presentationTimeOffset"),
    "SegmentBase": ("timescale", "presentationTimeOffset"),
    "S": ("t", "d", "r"),
}


def _check_integer_attributes(xml: _Xml) -> None:
    for node in _walk(xml.document.documentElement):
        for attribute in _DASH_INTEGER_ATTRIBUTES.get(_local(node), ()):
            if node.hasAttribute(attribute):
                value = node.getAttribute(attribute)
                try:
                    if "_" in value:  # Python's int() takes 1_000
                        raise ValueError(value)
                    number = int(value)
                except ValueError:
                    raise xml.error(node, f"attribute {attribute}={value!r}; expected an integer") from None
                if abs(number) > 2**53:  # beyond exact float arithmetic: segment counts and times overflow
                    raise xml.error(node, f"attribute {attribute}={value!r}; expected an integer of at most "
                                          "2**53 in size")


def _locate_parse_error(xml: _Xml, error: Exception) -> InputError:
    """The element mpegdash failed on: a failing element none of whose descendants fails."""
    from mpegdash import nodes

    classes = {
        "MPD": nodes.MPEGDASH,
        **{name: getattr(nodes, name) for name in (
            "Period", "AdaptationSet", "Representation", "SubRepresentation", "SegmentTemplate",
            "SegmentList", "SegmentBase", "SegmentTimeline", "S", "SegmentURL", "ContentComponent",
            "EventStream", "Event", "BaseURL", "ProgramInformation", "Descriptor",
        ) if hasattr(nodes, name)},
    }
    failing = []
    for node in _walk(xml.document.documentElement):
        cls = classes.get(_local(node))
        if cls is None:
            continue
        try:
            cls().parse(node)
        except (ValueError, TypeError, AttributeError):
            failing.append(node)
    for node in failing:
        if not any(other is not node and _is_inside(other, node) for other in failing):
            return xml.error(node, f"malformed attribute value ({error}); expected a number")
    root = xml.document.documentElement
    return xml.error(root, f"malformed attribute value ({error})")


def _is_inside(node: minidom.Node, ancestor: minidom.Node) -> bool:
    parent = node.parentNode
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parentNode
    return False


def _frame_rate(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(Fraction(text.strip())) if "_" not in text else math.nan  # Fraction takes 1_000
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _is_video(adaptation: Any, node: minidom.Element) -> bool:
    content = (adaptation.content_type or "").lower()
    mime = (adaptation.mime_type or "").lower()
    if content:
        return content == "video"
    if mime:
        return mime.startswith("video/")
    representations = adaptation.representations or []
    return any(
        (r.mime_type or "").lower().startswith("video/") or r.width or r.height for r in representations
    )


def _no_such_codec(codec: str | None, found: list[str], what: str) -> str:
    """The message when ``codec`` (``--codec``) left no video: the codecs there are instead."""
    return (f"found no video {what} of codec {codec!r}; expected one of the codecs found: "
            f"{', '.join(sorted(set(found)))} (--codec)")


def _timescale(xml: _Xml, elements: list[tuple[Any, minidom.Element]]) -> int:
    """The ``timescale`` in force (the innermost one set; 1 if none is): refused if <= 0."""
    for element, node in elements:
        if element.timescale is not None:
            if element.timescale <= 0:
                raise xml.error(node, f"attribute timescale={element.timescale}; expected an integer > 0 "
                                      "(units per second)")
            return int(element.timescale)
    return 1


def _segment_info(
    xml: _Xml,
    templates: list[tuple[Any, minidom.Element]],
    lists: list[tuple[Any, minidom.Element]],
    period_s: float | None,
) -> tuple[list[float] | None, list[float] | None, minidom.Element | None]:
    """Segment durations (and sizes, from byte ranges) of one representation.

    ``templates``/``lists`` are the SegmentTemplate/SegmentList elements in force,
    innermost (Representation) first; attributes inherit outwards.
    """
    if templates:
        def attribute(name: str) -> Any:
            for template, _ in templates:
                value = getattr(template, name)
                if value is not None:
                    return value
            return None

        node = templates[0][1]
        timescale = _timescale(xml, templates)
        timelines = next((t.segment_timelines for t, _ in templates if t.segment_timelines), None)
        if timelines:
            timeline_node = next(
                n for t, tn in templates if t.segment_timelines for n in _children(tn, "SegmentTimeline")
            )
            durations: list[float] = []
            entries = timelines[0].Ss or []
            s_nodes = _children(timeline_node, "S")
            if not entries:
                raise xml.error(timeline_node, "found no <S> entries; expected at least one")
            for index, (entry, s_node) in enumerate(zip(entries, s_nodes, strict=True)):
                if entry.d is None or entry.d <= 0:
                    raise xml.error(s_node, f"attribute d={entry.d!r}; expected an integer > 0")
                repeat = entry.r or 0
                if repeat < 0:
                    if index != len(entries) - 1 or period_s is None:
                        raise xml.error(
                            s_node,
                            "r < 0 (repeat to the end) needs a known period duration and the last <S>; "
                            "expected r >= 0",
                        )
                    remaining_s = period_s - sum(durations)
                    limits.check("segments", remaining_s / (entry.d / timescale), "segments in the timeline",
                                 source=xml.source, line=xml.line(s_node))
                    repeat = max(0, math.ceil(remaining_s / (entry.d / timescale) - 1e-9) - 1)
                limits.check("segments", len(durations) + repeat + 1, "segments in the timeline",
                             source=xml.source, line=xml.line(s_node))
                durations += [entry.d / timescale] * (repeat + 1)
            return durations, None, timeline_node
        duration = attribute("duration")
        if duration is None:
            raise xml.error(node, "found neither a duration attribute nor a SegmentTimeline; expected one")
        if duration <= 0:
            raise xml.error(node, f"attribute duration={duration}; expected an integer > 0")
        if period_s is None:
            raise xml.error(
                node,
                "found no presentation or period duration to count segments; expected "
                "MPD@mediaPresentationDuration or Period@duration",
            )
        segment_s = duration / timescale
        limits.check("segments", period_s / segment_s, "segments in the presentation", source=xml.source,
                     line=xml.line(node))
        count = max(1, math.ceil(period_s / segment_s - 1e-9))
        return [segment_s] * count, None, node
    if lists:
        segment_list, node = lists[0]
        urls = segment_list.segment_urls or []
        if not urls:
            raise xml.error(node, "found no <SegmentURL>; expected one per segment")
        timescale = _timescale(xml, lists)
        duration = next((s.duration for s, _ in lists if s.duration), None)
        if duration is None or duration <= 0:
            raise xml.error(node, f"attribute duration={duration!r}; expected an integer > 0")
        sizes: list[float] | None = []
        for url, url_node in zip(urls, _children(node, "SegmentURL"), strict=True):
            match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", url.media_range or "")
            if match is None:
                if url.media_range:
                    raise xml.error(
                        url_node, f"attribute mediaRange={url.media_range!r}; expected 'first-last'"
                    )
                sizes = None
                break
            first, last = int(match[1]), int(match[2])
            if last < first:
                raise xml.error(url_node, f"attribute mediaRange={url.media_range!r}; expected first <= last")
            assert sizes is not None
            sizes.append(float(last - first + 1))
        return [duration / timescale] * len(urls), sizes, node
    return None, None, None


def read_dash_mpd(
    path: str | Path,
    *,
    codec: str | None = None,
    segment_duration_s: float | None = None,
    duration_s: float | None = None,
    size_model: str = "cbr",
    seed: int = 0,
    size_variation: float | None = None,
    name: str | None = None,
) -> ManifestImport:
    """Read the video ladder of a DASH MPD (static, single period).

    Each video ``Representation`` becomes a rung: ``@bandwidth`` (bit/s),
    ``@width``/``@height``, ``@codecs`` (reduced to a family such as ``h264``) and
    ``@frameRate`` (e.g. ``30000/1001``), inherited from the ``AdaptationSet``
    when absent. Audio and text sets are skipped. Segments come from the
    ``SegmentTemplate`` (``@duration`` / ``@timescale`` with the period or
    presentation duration, ``MPD@mediaPresentationDuration`` in ISO 8601) or its
    ``SegmentTimeline`` (``<S d= r=>``; the most common duration is the ladder's),
    or from a ``SegmentList``, whose ``SegmentURL@mediaRange`` byte ranges give
    per-segment sizes. Every representation must have the same segment count.

    Args:
        path: the ``.mpd`` file.
        codec: keep only representations of this codec family (e.g. ``"hevc"``).
        segment_duration_s: segment duration, seconds, for an MPD without segment
            information (``SegmentBase``); overrides the MPD's otherwise.
        duration_s: title length, seconds, when the MPD has none.
        size_model: ``"cbr"`` or ``"vbr"`` sizes when the MPD has no per-segment sizes.
        seed: seed of the VBR sizes.
        size_variation: the VBR title variation (None: drawn from the seed).
        name: the ladder's name; default: the file's stem.

    Returns:
        The ladder with notes on the import.

    Raises:
        InputError: naming the file, line and element, if the MPD is malformed, is
            live or multi-period, lacks a required attribute, has a bandwidth <= 0,
            or its representations disagree on the segment count.
        UnknownNameError: if ``size_model`` is unknown.
    """
    from mpegdash.nodes import MPEGDASH
    from mpegdash.utils import parse_child_nodes

    source = Path(path)
    _check_options(size_model, segment_duration_s, duration_s)
    xml = _Xml(source, _read_bytes(source))
    root = xml.document.documentElement
    if _local(root) != "MPD":
        raise xml.error(root, f"found a <{_local(root)}> root element; expected <MPD>")
    _check_integer_attributes(xml)
    try:
        mpd = parse_child_nodes(xml.document, "MPD", MPEGDASH)[0]  # mpegdash's object model, from our DOM
    except (ValueError, TypeError, AttributeError) as exc:
        raise _locate_parse_error(xml, exc) from None
    if (mpd.type or "static") != "static":
        raise xml.error(root, f"attribute type={mpd.type!r} (live); expected a static (on-demand) MPD")
    period_nodes = _children(root, "Period")
    if not period_nodes:
        raise xml.error(root, "found no <Period>; expected one")
    if len(period_nodes) > 1:
        raise xml.error(period_nodes[1], "found a second <Period>; expected a single-period MPD")
    period, period_node = mpd.periods[0], period_nodes[0]
    period_s: float | None = None
    for text, node in ((period.duration, period_node), (mpd.media_presentation_duration, root)):
        if text and period_s is None:
            try:
                period_s = parse_iso8601_duration(text)
            except ValueError as exc:
                raise xml.error(node, str(exc)) from None
    if period_s is None and duration_s is not None:
        period_s = duration_s
    notes: list[str] = []
    renditions: list[_Rendition] = []
    other_codecs: list[str] = []  # of the video representations that --codec skipped
    adaptation_nodes = _children(period_node, "AdaptationSet")
    if not adaptation_nodes:
        raise xml.error(period_node, "found no <AdaptationSet>; expected at least one")
    period_templates = list(zip(period.segment_templates or [], _children(period_node, "SegmentTemplate"),
                                strict=True))
    period_lists = list(zip(period.segment_lists or [], _children(period_node, "SegmentList"), strict=True))
    for adaptation, adaptation_node in zip(period.adaptation_sets, adaptation_nodes, strict=True):
        if not _is_video(adaptation, adaptation_node):
            line = xml.line(adaptation_node)
            notes.append(f"skipped {_describe(adaptation_node)} on line {line} (not video)")
            continue
        set_templates = list(zip(adaptation.segment_templates or [],
                                 _children(adaptation_node, "SegmentTemplate"), strict=True))
        set_lists = list(zip(adaptation.segment_lists or [], _children(adaptation_node, "SegmentList"),
                             strict=True))
        representation_nodes = _children(adaptation_node, "Representation")
        if not representation_nodes:
            raise xml.error(adaptation_node, "found no <Representation>; expected at least one")
        for representation, node in zip(adaptation.representations, representation_nodes, strict=True):
            where = _describe(node)
            if representation.bandwidth is None:
                raise xml.error(node, "missing attribute bandwidth; expected bit/s > 0")
            if representation.bandwidth <= 0:
                raise xml.error(node, f"attribute bandwidth={representation.bandwidth}; expected bit/s > 0")
            codecs = representation.codecs or adaptation.codecs or ""
            family = codec_family(codecs)
            if codec is not None and family != codec:
                notes.append(f"skipped {where} on line {xml.line(node)} (codec {family or 'unknown'})")
                other_codecs.append(family or "unknown")
                continue
            width = representation.width if representation.width is not None else adaptation.width
            height = representation.height if representation.height is not None else adaptation.height
            for attribute, value in (("width", width), ("height", height)):
                if value is not None and value <= 0:
                    raise xml.error(node, f"attribute {attribute}={value}; expected pixels > 0")
            fps_text = representation.frame_rate or adaptation.frame_rate
            fps = _frame_rate(fps_text)
            if fps_text and fps is None:
                raise xml.error(node, f"attribute frameRate={fps_text!r}; expected e.g. '25' or '30000/1001'")
            templates = list(zip(representation.segment_templates or [], _children(node, "SegmentTemplate"),
                                 strict=True)) + set_templates + period_templates
            lists = list(zip(representation.segment_lists or [], _children(node, "SegmentList"), strict=True))
            lists += set_lists + period_lists
            durations, sizes, segments_node = _segment_info(xml, templates, lists, period_s)
            renditions.append(
                _Rendition(
                    float(representation.bandwidth),
                    width,
                    height,
                    family,
                    fps,
                    where,
                    xml.line(node),
                    durations,
                    sizes,
                    None if segments_node is None else (source, xml.line(segments_node), where),
                )
            )
    if not renditions and other_codecs:
        raise xml.error(period_node, _no_such_codec(codec, other_codecs, "representation"))
    if not renditions:
        raise xml.error(
            period_node,
            "found no video representation; expected an AdaptationSet with contentType='video' or a video "
            "mimeType",
        )
    if period_s is not None and renditions[0].segment_durations_s is None:
        duration_s = period_s  # SegmentBase only: the MPD's duration is the title's
    return _build(
        source,
        renditions,
        fmt="dash",
        segment_duration_s=segment_duration_s,
        duration_s=duration_s,
        size_model=size_model,
        seed=seed,
        variation=size_variation,
        notes=notes,
        name=name,
        description=f"Imported from the DASH MPD {source.name}",
    )


# ------------------------------------------------------------------------------------------
# HLS


_HLS_INTEGER = r"[+-]?\d+"
_HLS_DECIMAL = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
#: The numbers abrsim reads from a playlist, by tag (and attribute): what each must look like and
#: what it means. Checked before m3u8 converts them with Python's int() and float(), whose errors name
#: no attribute and which take ``1_000``.
_HLS_NUMBERS = {
    "#EXT-X-STREAM-INF": {
        "BANDWIDTH": (_HLS_DECIMAL, "a number of bit/s"),
        "AVERAGE-BANDWIDTH": (_HLS_DECIMAL, "a number of bit/s"),
        "FRAME-RATE": (_HLS_DECIMAL, "frames/s, a decimal number such as 29.97"),
    },
    "#EXTINF": {"EXTINF": (_HLS_DECIMAL, "the segment duration in seconds, a decimal number such as 4.0")},
    "#EXT-X-BITRATE": {"EXT-X-BITRATE": (_HLS_INTEGER, "an integer number of kbit/s")},
}
_HLS_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)=("[^"]*"|[^,]*)\s*(?:,|$)')


def _check_hls_numbers(source: Path, line: str, lineno: int) -> None:
    """Refuse a number of :data:`_HLS_NUMBERS` that is not one, naming the line and the attribute."""
    tag, _, value = line.partition(":")
    expected = _HLS_NUMBERS.get(tag.strip())
    if expected is None:
        return
    if tag.strip() in ("#EXTINF", "#EXT-X-BITRATE"):  # a bare value: "#EXTINF:<seconds>,[<title>]"
        cells = {tag.strip()[1:]: value.split(",", 1)[0].strip()}
    else:
        cells = dict(_HLS_ATTRIBUTE.findall(value))
    for name, (pattern, meaning) in expected.items():
        text = cells.get(name)
        if text is not None and not re.fullmatch(pattern, text):
            raise InputError(f"found {name}={text}; expected {meaning}", source=source, line=lineno,
                             field=name)


def _parse_playlist(source: Path, text: str) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """Parse with m3u8, remembering the line of every tag; a parse failure names its line."""
    import m3u8

    lines: dict[str, list[int]] = {}
    last = [0]

    def track(line: str, lineno: int, data: dict[str, Any], state: dict[str, Any]) -> bool:
        last[0] = lineno
        tag = line.split(":", 1)[0]
        lines.setdefault(tag, []).append(lineno)
        _check_hls_numbers(source, line, lineno)
        return False  # let m3u8 parse the tag too

    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if first != "#EXTM3U":
        line = next((k for k, ln in enumerate(text.splitlines(), 1) if ln.strip()), 1)
        raise InputError(f"found {first[:40]!r}; expected '#EXTM3U' first", source=source, line=line)
    try:
        data = m3u8.parse(text, custom_tags_parser=track)
    except InputError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, OverflowError) as exc:  # Overflow: int(inf)
        raise InputError(f"malformed tag ({exc})", source=source, line=last[0] or None) from None
    return data, lines


def _media_playlist(
    source: Path, uri: str, notes: list[str]
) -> tuple[Path, list[float], list[float] | None, int | None] | None:
    """Read a variant's media playlist if it is a local file; None (with a note) otherwise."""
    parts = urlsplit(uri)
    if parts.scheme or parts.netloc:
        notes.append(f"media playlist {uri!r} not read (remote; nothing is fetched)")
        return None
    folder = source.parent.resolve()
    try:
        target = (source.parent / unquote(parts.path)).resolve()
        is_file = target.is_file()
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system
        notes.append(f"media playlist {uri!r} not read (not a usable file name)")
        return None
    if not target.is_relative_to(folder):
        # Only files in the master playlist's folder (or below it) are inputs: never open, and so
        # never quote, a file a playlist points to elsewhere (../, an absolute path, a symlink out).
        notes.append(f"media playlist {uri!r} not read (outside the master playlist's folder)")
        return None
    if not is_file:
        notes.append(f"media playlist {uri!r} not found beside the master playlist")
        return None
    text = _read_bytes(target).decode("utf-8-sig", errors="replace")
    data, lines = _parse_playlist(target, text)
    if data.get("is_variant"):
        raise InputError(
            "found a master playlist where a media playlist was expected", source=target, line=1
        )
    segments = data.get("segments") or []
    if not segments:
        raise InputError("found no segments (#EXTINF); expected a media playlist", source=target)
    extinf_lines = lines.get("#EXTINF", [])
    durations = []
    for index, segment in enumerate(segments):
        duration = segment.get("duration")
        line = extinf_lines[index] if index < len(extinf_lines) else None
        if duration is None or not 0 < duration <= MAX_SEGMENT_DURATION_S:
            raise InputError(f"found segment duration {duration!r}; expected seconds > 0 and at most "
                             f"{MAX_SEGMENT_DURATION_S:g}", source=target, line=line, field="EXTINF")
        durations.append(float(duration))
    sizes: list[float] | None = None
    if all(segment.get("byterange") for segment in segments):
        sizes = []
        byterange_lines = lines.get("#EXT-X-BYTERANGE", [])
        for index, segment in enumerate(segments):
            match = re.fullmatch(r"\s*(\d+)(?:@(\d+))?\s*", segment["byterange"])
            if match is None or int(match[1]) <= 0:
                raise InputError(
                    f"found {segment['byterange']!r}; expected '<bytes>[@<offset>]' with bytes > 0",
                    source=target,
                    line=byterange_lines[index] if index < len(byterange_lines) else None,
                    field="EXT-X-BYTERANGE",
                )
            sizes.append(float(match[1]))
    elif all(segment.get("bitrate") for segment in segments):
        sizes = [segment["bitrate"] * 1000 / 8 * d for segment, d in zip(segments, durations, strict=True)]
    if not data.get("is_endlist"):
        notes.append(f"{target.name} has no #EXT-X-ENDLIST (a live playlist): read as it stands")
    return target, durations, sizes, extinf_lines[-1] if extinf_lines else None


def read_hls_playlist(
    path: str | Path,
    *,
    codec: str | None = None,
    segment_duration_s: float | None = None,
    duration_s: float | None = None,
    size_model: str = "cbr",
    seed: int = 0,
    size_variation: float | None = None,
    name: str | None = None,
) -> ManifestImport:
    """Read the video ladder of an HLS master playlist.

    Each ``#EXT-X-STREAM-INF`` variant becomes a rung: ``AVERAGE-BANDWIDTH`` when
    present, else ``BANDWIDTH`` (bit/s); ``RESOLUTION``; ``CODECS`` (reduced to a
    family such as ``h264``); ``FRAME-RATE``. Audio-only variants and I-frame
    playlists are skipped. When a variant's media playlist is a local file beside
    the master (never fetched), its ``#EXTINF`` durations give the segment
    duration (the most common one) and count, and ``#EXT-X-BYTERANGE`` lengths
    (or ``#EXT-X-BITRATE``) the per-segment sizes; all variants read must agree on
    the segment count. Without media playlists, give ``segment_duration_s`` (and
    ``duration_s``, else :data:`DEFAULT_DURATION_S`).

    Args:
        path: the master playlist (``.m3u8``).
        codec: keep only variants of this codec family.
        segment_duration_s: segment duration, seconds, when no media playlist is
            readable; overrides the playlists' otherwise.
        duration_s: title length, seconds, when no media playlist is readable.
        size_model: ``"cbr"`` or ``"vbr"`` sizes when the playlists carry none.
        seed: seed of the VBR sizes.
        size_variation: the VBR title variation (None: drawn from the seed).
        name: the ladder's name; default: the file's stem.

    Returns:
        The ladder with notes on the import.

    Raises:
        InputError: naming the file and line, if a playlist is malformed, a variant
            lacks BANDWIDTH or has a bandwidth <= 0 or a bad RESOLUTION, the file is a
            media playlist, or the media playlists disagree on the segment count.
        UnknownNameError: if ``size_model`` is unknown.
    """
    source = Path(path)
    _check_options(size_model, segment_duration_s, duration_s)
    text = _read_bytes(source).decode("utf-8-sig", errors="replace")
    data, lines = _parse_playlist(source, text)
    stream_lines = lines.get("#EXT-X-STREAM-INF", [])
    if not data.get("is_variant") or not stream_lines:
        raise InputError(
            "found a media playlist (no #EXT-X-STREAM-INF); expected a master playlist", source=source, line=1
        )
    playlists = data.get("playlists", [])
    if len(playlists) != len(stream_lines):
        line = stream_lines[len(playlists)] if len(playlists) < len(stream_lines) else stream_lines[-1]
        raise InputError("found #EXT-X-STREAM-INF without a URI line after it; expected one", source=source,
                         line=line, field="EXT-X-STREAM-INF")
    notes: list[str] = []
    renditions: list[_Rendition] = []
    other_codecs: list[str] = []  # of the video variants that --codec skipped
    for playlist, line in zip(playlists, stream_lines, strict=True):
        info = playlist["stream_info"]
        where = f"EXT-X-STREAM-INF {playlist['uri']}"
        if info.get("bandwidth") is None:
            raise InputError("missing attribute BANDWIDTH; expected bit/s > 0", source=source, line=line,
                             field="BANDWIDTH")
        for key in ("BANDWIDTH", "AVERAGE-BANDWIDTH"):
            value = info.get(key.lower().replace("-", "_"))
            if value is not None and not 0 < value <= 2**53:  # (an integer of any size, from m3u8)
                raise InputError(
                    f"found {key}={value}; expected bit/s > 0 and at most 2**53", source=source, line=line,
                    field=key)
        average = info.get("average_bandwidth")
        bandwidth = average if average is not None else info["bandwidth"]
        family = codec_family(info.get("codecs") or "")
        resolution = info.get("resolution")
        if not resolution and info.get("codecs") and not family:
            notes.append(f"skipped the audio-only variant on line {line}")
            continue
        if codec is not None and family != codec:
            notes.append(f"skipped the variant on line {line} (codec {family or 'unknown'})")
            other_codecs.append(family or "unknown")
            continue
        width = height = None
        if resolution:
            match = re.fullmatch(r"\s*(\d+)x(\d+)\s*", str(resolution))
            if match is None or int(match[1]) <= 0 or int(match[2]) <= 0:
                raise InputError(f"found RESOLUTION={resolution!r}; expected <width>x<height> in pixels > 0",
                                 source=source, line=line, field="RESOLUTION")
            width, height = int(match[1]), int(match[2])
        fps = info.get("frame_rate")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise InputError(f"found FRAME-RATE={fps}; expected frames/s > 0", source=source, line=line,
                             field="FRAME-RATE")
        rendition = _Rendition(float(bandwidth), width, height, family, fps, where, line)
        media = _media_playlist(source, playlist["uri"], notes)
        if media is not None:
            target, durations, sizes, last_line = media
            rendition.segment_durations_s = durations
            rendition.segment_sizes_bytes = sizes
            rendition.segments_where = (target, last_line, playlist["uri"])
        renditions.append(rendition)
    if not renditions and other_codecs:
        raise InputError(_no_such_codec(codec, other_codecs, "variant"), source=source, line=stream_lines[0])
    if not renditions:
        raise InputError("found no video variant; expected at least one #EXT-X-STREAM-INF with video",
                         source=source, line=stream_lines[0])
    read = [r for r in renditions if r.segment_durations_s is not None]
    if read and len(read) != len(renditions):
        notes.append("media playlists were read for some variants only; their segments apply to all")
        for rendition in renditions:
            if rendition.segment_durations_s is None:
                rendition.segment_durations_s = read[0].segment_durations_s
                rendition.segments_where = read[0].segments_where
    return _build(
        source,
        renditions,
        fmt="hls",
        segment_duration_s=segment_duration_s,
        duration_s=duration_s,
        size_model=size_model,
        seed=seed,
        variation=size_variation,
        notes=notes,
        name=name,
        description=f"Imported from the HLS master playlist {source.name}",
    )


# ------------------------------------------------------------------------------------------


def _detect(source: Path) -> str:
    suffix = source.suffix.lower()
    if suffix == ".mpd":
        return "dash"
    if suffix in (".m3u8", ".m3u"):
        return "hls"
    head = _read_bytes(source)[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#EXTM3U"):
        return "hls"
    if head.startswith(b"<"):
        return "dash"
    raise InputError(
        "found neither XML nor '#EXTM3U'; expected a DASH MPD (.mpd) or an HLS master playlist (.m3u8)",
        source=source,
        line=1,
    )


def read_manifest(path: str | Path, format: str | None = None, **options: Any) -> ManifestImport:
    """Read a DASH MPD or an HLS master playlist (by ``format``, else by suffix, else by content).

    Args:
        path: the manifest file.
        format: ``"dash"``, ``"hls"`` or None to detect.
        **options: passed to :func:`read_dash_mpd` or :func:`read_hls_playlist`.

    Raises:
        UnknownNameError: if ``format`` is unknown.
        InputError: as the readers do, or if the format cannot be told.
    """
    source = Path(path)
    if format is not None and format not in MANIFEST_FORMATS:
        raise UnknownNameError("manifest format", format, MANIFEST_FORMATS)
    readers: dict[str, Callable[..., ManifestImport]] = {"dash": read_dash_mpd, "hls": read_hls_playlist}
    return readers[format or _detect(source)](source, **options)


def import_manifest(path: str | Path, format: str | None = None, **options: Any) -> Ladder:
    """Like :func:`read_manifest`, returning only the ladder."""
    return read_manifest(path, format, **options).ladder

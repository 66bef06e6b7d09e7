"""Reading Vitis HLS C-synthesis reports (``csynth.xml``): the one reader of the project.

Where this fits: the overlay build's fit step (``python -m vitcod.overlay fit``) refuses a design
whose resource estimate exceeds the board, reading the IP's ``csynth.xml``; ``make synth``
(:mod:`vitcod.hls.synth`) reads the network's and its engines' reports. Both read the fields
hls4ml's ``CSynthesisReport`` has, with :func:`read_report`. Standard library only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

RESOURCE_TAGS = {"dsp": "DSP", "bram_18k": "BRAM_18K", "lut": "LUT", "ff": "FF", "uram": "URAM"}
"""Our resource names -> the report's tags (``DSP48E`` in older reports is read as ``DSP``)."""
#: Tags a report may lack (7-series parts have no URAM; some tool versions then omit the tag).
OPTIONAL_TAGS = ("URAM",)


class CsynthReportError(ValueError):
    """A C-synthesis report is missing, or lacks a field that was asked for."""


def read_report(path: str | Path) -> dict[str, str | None]:
    """The ``CSynthesisReport`` fields hls4ml reads, straight from a ``<top>_csynth.xml``.

    Returns:
        The report's texts (None where an element is missing): ``TargetClockPeriod``,
        ``EstimatedClockPeriod``, ``BestLatency``, ``WorstLatency``, ``IntervalMin``,
        ``IntervalMax``, and one entry per element of ``AreaEstimates/Resources`` (``DSP``,
        ``BRAM_18K``, ``LUT``, ``FF``, ``URAM``...) and of ``AvailableResources`` (prefixed
        ``Available``).

    Raises:
        CsynthReportError: the file does not exist.
        xml.etree.ElementTree.ParseError: it is not XML.
    """
    path = Path(path)
    if not path.is_file():
        raise CsynthReportError(f"HLS report {path} not found")
    root = ET.parse(path).getroot()

    def text(xpath: str) -> str | None:
        node = root.find(xpath)
        return None if node is None else node.text

    latency = "PerformanceEstimates/SummaryOfOverallLatency/"
    report = {"TargetClockPeriod": text("UserAssignments/TargetClockPeriod"),
              "EstimatedClockPeriod": text("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
              "BestLatency": text(latency + "Best-caseLatency"), "WorstLatency": text(latency + "Worst-caseLatency"),
              "IntervalMin": text(latency + "Interval-min"), "IntervalMax": text(latency + "Interval-max")}
    for section, prefix in (("Resources", ""), ("AvailableResources", "Available")):
        node = root.find(f"AreaEstimates/{section}")
        for child in (node if node is not None else []):
            report[prefix + ("DSP" if child.tag == "DSP48E" else child.tag)] = child.text
    return report


def resource_estimate(path: str | Path) -> dict[str, int]:
    """Resource estimate ``{dsp, bram_18k, lut, ff, uram}`` of a ``csynth.xml``, as integers (a
    missing URAM tag is 0).

    Raises:
        CsynthReportError: no report, or a resource missing or not a number.
    """
    report = read_report(path)
    estimate = {}
    for key, tag in RESOURCE_TAGS.items():
        value = (report.get(tag) or "").strip()
        if not value and tag in OPTIONAL_TAGS:
            value = "0"
        if not value.isdigit():
            raise CsynthReportError(f"{path}: resource {tag} missing or not a number (got {report.get(tag)!r})")
        estimate[key] = int(value)
    return estimate

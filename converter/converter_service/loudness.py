"""Loudness normalisation, EBU R128, in two passes of ffmpeg's loudnorm filter.

Pass 1 measures the source (`measure_filter`: loudnorm with `print_format=json`, which
prints its measurement on stderr at the end, read by `parse_measurement`). Pass 2 applies
the gain the measurement calls for (`normalize_filter`: the measured values and
`linear=true`, so the whole file gets one gain, as long as that keeps the true peak under
`TRUE_PEAK_DBTP`; else loudnorm compresses the peaks). loudnorm works and outputs at
192 kHz, so pass 2 ends with `aresample` back to the source's rate.

Loudness in LUFS (LU for the range), true peak in dBTP. The result measures within ±1 LU
of the target with ffmpeg's `ebur128` (the converter's tests check a quiet and a loud
source).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

#: The loudest a sample may peak between samples (dBTP), and the loudness range (LU) the
#: dynamic mode keeps: EBU R128's streaming values.
TRUE_PEAK_DBTP = -1.5
LOUDNESS_RANGE_LU = 11.0
#: Quieter than this (LUFS) is silence to EBU R128 (its absolute gate): nothing to raise.
SILENCE_LUFS = -70.0

_JSON_BLOCK = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.S)


@dataclass(frozen=True)
class Measurement:
    """loudnorm's pass-1 reading of the source (`input_*` and `target_offset` of its JSON)."""

    integrated: float  # LUFS
    true_peak: float  # dBTP
    loudness_range: float  # LU
    threshold: float  # LUFS
    offset: float  # LU

    @property
    def silent(self) -> bool:
        return not math.isfinite(self.integrated) or self.integrated < SILENCE_LUFS


def _target(target_lufs: float) -> str:
    return f"loudnorm=I={target_lufs:g}:TP={TRUE_PEAK_DBTP:g}:LRA={LOUDNESS_RANGE_LU:g}"


def measure_filter(target_lufs: float) -> str:
    """Pass 1's filter: measure, print the measurement as JSON."""
    return f"{_target(target_lufs)}:print_format=json"


def parse_measurement(stderr: str) -> Measurement | None:
    """The last loudnorm JSON block in pass 1's stderr; None when there is none."""
    blocks = _JSON_BLOCK.findall(stderr)
    if not blocks:
        return None
    values = json.loads(blocks[-1])
    return Measurement(
        integrated=float(values["input_i"]),
        true_peak=float(values["input_tp"]),
        loudness_range=float(values["input_lra"]),
        threshold=float(values["input_thresh"]),
        offset=float(values["target_offset"]),
    )


def normalize_filter(target_lufs: float, measured: Measurement, sample_rate: int) -> str:
    """Pass 2's filters: the gain to `target_lufs`, then back to `sample_rate` (Hz)."""
    return (
        f"{_target(target_lufs)}:measured_I={measured.integrated:g}"
        f":measured_TP={measured.true_peak:g}:measured_LRA={measured.loudness_range:g}"
        f":measured_thresh={measured.threshold:g}:offset={measured.offset:g}"
        f":linear=true:print_format=summary,aresample={sample_rate}"
    )

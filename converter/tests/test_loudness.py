"""loudnorm's two passes (loudness.py): its measurement read, pass 2's filter written."""

import pytest

from converter_service.loudness import (
    Measurement,
    measure_filter,
    normalize_filter,
    parse_measurement,
)

PASS_1 = """\
[out#0/null @ 0x5] video:0KiB audio:2250KiB subtitle:0KiB other streams:0KiB
[Parsed_loudnorm_2 @ 0x7f0a14013b40]
{
\t"input_i" : "-27.61",
\t"input_tp" : "-4.47",
\t"input_lra" : "18.06",
\t"input_thresh" : "-39.20",
\t"output_i" : "-16.58",
\t"output_tp" : "-1.50",
\t"output_lra" : "14.78",
\t"output_thresh" : "-27.71",
\t"normalization_type" : "dynamic",
\t"target_offset" : "0.58"
}
size=N/A time=00:00:06.00 bitrate=N/A speed=96.1x
"""


def test_pass_1_measurement_is_read_from_its_json():
    assert parse_measurement(PASS_1) == Measurement(-27.61, -4.47, 18.06, -39.2, 0.58)
    assert not parse_measurement(PASS_1).silent


@pytest.mark.parametrize(
    ("stderr", "silent"),
    [(PASS_1.replace('"-27.61"', '"-inf"'), True), (PASS_1.replace('"-27.61"', '"-75.0"'), True)],
)
def test_silence_is_told_apart(stderr, silent):
    assert parse_measurement(stderr).silent is silent


def test_no_json_is_no_measurement():
    assert parse_measurement("Error while filtering\n") is None


def test_pass_2_applies_the_measurement_linearly_and_returns_to_the_source_rate():
    measured = parse_measurement(PASS_1)
    assert measure_filter(-16) == "loudnorm=I=-16:TP=-1.5:LRA=11:print_format=json"
    assert normalize_filter(-16, measured, 44100) == (
        "loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-27.61:measured_TP=-4.47"
        ":measured_LRA=18.06:measured_thresh=-39.2:offset=0.58:linear=true"
        ":print_format=summary,aresample=44100"
    )

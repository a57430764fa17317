"""The catalog of formats and options (mp3common.options): what each format asks of ffmpeg,
which form fields are taken and how they are refused, when a stream may be copied, and what
`describe()` (GET /formats) tells clients. Pure: no store, no ffmpeg."""

import json

import pytest

from mp3common.options import (
    CHANNELS,
    DEFAULT_FORMAT,
    DEFAULT_OPTIONS,
    FORMATS,
    LOUDNESS_NAMES,
    LOUDNESS_RANGE,
    OPTION_NAMES,
    ConversionOptions,
    InvalidOption,
    clock,
    describe,
    parse_options,
)


def _options(**fields: str) -> ConversionOptions:
    options, notes = parse_options(fields)
    assert notes == []
    return options


def _refusal(**fields: str) -> InvalidOption:
    with pytest.raises(InvalidOption) as refused:
        parse_options(fields)
    return refused.value


# --- formats ------------------------------------------------------------------------------


ENCODING = {
    # format: (default quality, its encoder arguments, muxer, extension, media type)
    "mp3": ("V2", ["-c:a", "libmp3lame", "-q:a", "2"], "mp3", "mp3", "audio/mpeg"),
    "m4a": (
        "192k",
        ["-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart"],
        "ipod",
        "m4a",
        "audio/mp4",
    ),
    "opus": ("128k", ["-c:a", "libopus", "-b:a", "128k"], "opus", "opus", "audio/ogg"),
    "flac": (None, ["-c:a", "flac"], "flac", "flac", "audio/flac"),
    "wav": (None, ["-c:a", "pcm_s16le"], "wav", "wav", "audio/wav"),
}


def test_the_table_below_covers_every_format():
    assert list(ENCODING) == list(FORMATS)
    assert DEFAULT_FORMAT == "mp3"


@pytest.mark.parametrize("name", ENCODING)
def test_each_format_encodes_at_its_default_quality_when_none_is_chosen(name):
    default, args, muxer, extension, mime_type = ENCODING[name]
    fmt = FORMATS[name]
    assert fmt.default_quality == default
    assert fmt.encoder_args(None) == args
    assert (fmt.muxer, fmt.extension, fmt.mime_type) == (muxer, extension, mime_type)
    assert fmt.output_name("clip") == f"clip.{extension}"
    options = _options(format=name)
    assert (options.format, options.quality, options.quality_chosen) == (name, None, False)
    assert options.effective_quality == default
    assert fmt.encoder_args(options.quality) == args


@pytest.mark.parametrize(
    ("name", "quality", "args"),
    [
        ("mp3", "V0", ["-c:a", "libmp3lame", "-q:a", "0"]),
        ("mp3", "V9", ["-c:a", "libmp3lame", "-q:a", "9"]),
        ("mp3", "320k", ["-c:a", "libmp3lame", "-b:a", "320k"]),
        ("m4a", "96k", ["-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"]),
        ("opus", "64k", ["-c:a", "libopus", "-b:a", "64k"]),
        ("opus", "256k", ["-c:a", "libopus", "-b:a", "256k"]),
    ],
)
def test_a_chosen_quality_gives_its_encoder_arguments(name, quality, args):
    options = _options(format=name, quality=quality)
    assert (options.quality, options.quality_chosen) == (quality, True)
    assert FORMATS[name].encoder_args(options.quality) == args


def test_mp3_offers_lames_vbr_levels_and_the_usual_constant_bitrates():
    names = [q.name for q in FORMATS["mp3"].qualities]
    assert names == [f"V{level}" for level in range(10)] + ["128k", "192k", "256k", "320k"]


@pytest.mark.parametrize("name", FORMATS)
def test_a_lossy_formats_default_is_one_of_its_qualities_and_lossless_ones_have_none(name):
    fmt = FORMATS[name]
    if fmt.lossless:
        assert (fmt.qualities, fmt.default_quality) == ((), None)
    else:
        assert fmt.default_quality in [q.name for q in fmt.qualities]


# --- quality ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quality"),
    [(fmt.name, q.name) for fmt in FORMATS.values() for q in fmt.qualities],
)
@pytest.mark.parametrize("spelling", [str.lower, str.upper])
def test_every_quality_name_is_taken_in_any_case(name, quality, spelling):
    options = _options(format=name, quality=spelling(quality))
    assert options.quality == quality  # its canonical spelling, as the job stores it
    assert options.quality_chosen
    assert FORMATS[name].quality(spelling(quality)).name == quality


@pytest.mark.parametrize(
    ("name", "quality"),
    [("mp3", "V10"), ("mp3", "64k"), ("mp3", "V 2"), ("m4a", "V2"), ("opus", "320k")],
)
def test_a_quality_the_format_lacks_is_refused_naming_the_allowed_ones(name, quality):
    refused = _refusal(format=name, quality=quality)
    allowed = [q.name for q in FORMATS[name].qualities]
    assert refused.option == "quality"
    assert refused.allowed == allowed
    assert refused.message == (
        f"quality for {name} must be one of {', '.join(allowed)}, not {quality!r}."
    )


@pytest.mark.parametrize("name", ["flac", "wav"])
@pytest.mark.parametrize("quality", ["V2", "320k", "best"])
def test_a_quality_for_a_lossless_format_is_ignored_with_a_note(name, quality):
    options, notes = parse_options({"format": name, "quality": quality})
    assert (options.quality, options.quality_chosen) == (None, False)
    assert notes == [f"quality is ignored for {name}, a lossless format"]


# --- trim ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90.5", 90.5),
        (" 12 ", 12.0),
        ("1:30", 90.0),
        ("01:30", 90.0),
        ("1:30.25", 90.25),
        ("1:02:03", 3723.0),
        ("01:02:03.250", 3723.25),
        ("0:00:00.001", 0.001),
        ("168:00:00", 604800.0),  # a week: the longest
    ],
)
def test_a_time_is_seconds_or_hours_minutes_seconds(text, seconds):
    assert _options(start=text).start == seconds
    assert _options(end=text).end == seconds


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("abc", "must be seconds"),
        ("-1", "must be seconds"),
        ("1e3", "must be seconds"),
        ("nan", "must be seconds"),
        ("inf", "must be seconds"),
        ("1,5", "must be seconds"),
        (".5", "must be seconds"),
        ("5.", "must be seconds"),
        (":30", "must be seconds"),
        ("1:", "must be seconds"),
        ("1:2:3:4", "must be seconds"),
        ("1:100", "seconds must be below 60"),
        ("1:60", "seconds must be below 60"),
        ("1:00:60.5", "seconds must be below 60"),
        ("1:60:00", "minutes must be below 60"),
        ("168:00:01", "past any media's end"),
        ("9" * 400, "past any media's end"),
        # More digits than int() converts (4300): a ValueError, a 500 at the gateway, once.
        ("9" * 5000 + ":00:00", "past any media's end"),
        ("\uff11\uff12", "must be seconds"),  # digits, but not ASCII ones
        ("\u0661:\u0663\u0660", "must be seconds"),
    ],
)
@pytest.mark.parametrize("option", ["start", "end"])
def test_a_bad_time_is_refused_naming_its_option(option, text, why):
    refused = _refusal(**{option: text})
    assert refused.option == option
    assert why in refused.message and option in refused.message


@pytest.mark.parametrize(
    ("start", "end"), [("10", "10"), ("1:00", "30"), (None, "0"), ("0", "0"), ("5", "4.999")]
)
def test_an_end_not_after_the_start_is_refused(start, end):
    fields = {"end": end} | ({"start": start} if start is not None else {})
    refused = _refusal(**fields)
    assert refused.option == "end"
    assert refused.message == f"end ({end}) must be after start ({start or '0'})."


def test_a_start_at_zero_is_no_trim():
    assert not _options(start="0").trimmed
    assert not _options(start="0.0004").trimmed  # to the millisecond: 0
    options = _options(start="00:00", end="30")
    assert (options.start, options.end, options.trimmed) == (None, 30.0, True)


# --- loudness, track, channels ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lufs"),
    [
        ("-16", -16.0),
        ("-23.5", -23.5),
        ("-70", -70.0),
        ("-5", -5.0),
        ("-16 LUFS", -16.0),
        ("-14lufs", -14.0),
        *((name, -23.0) for name in LOUDNESS_NAMES),
        ("EBU", -23.0),
        ("R128", -23.0),
    ],
)
def test_a_loudness_target_is_lufs_in_range_or_a_name(text, lufs):
    assert _options(normalize=text).normalize == lufs


@pytest.mark.parametrize("text", ["16", "-4.9", "-70.1", "-100", "loud", "-16 dB", "ebu128"])
def test_a_bad_loudness_target_is_refused_with_the_range_and_names(text):
    refused = _refusal(normalize=text)
    assert refused.option == "normalize"
    assert refused.allowed == {"minimum": -70.0, "maximum": -5.0, "names": list(LOUDNESS_NAMES)}
    assert "from -70 to -5" in refused.message and repr(text) in refused.message


@pytest.mark.parametrize(
    ("text", "track"),
    [("0", 0), ("1", 1), ("63", 63), ("007", 7), ("eng", "eng"), ("DEU", "deu"), ("fr", "fr")],
)
def test_a_track_is_an_index_or_a_language_code(text, track):
    assert _options(track=text).track == track


@pytest.mark.parametrize(
    "text",
    [
        *("64", "-1", "1.5", "english", "e", "en1", "0x1", "d-e"),
        # Digits that str.isdigit() takes and int() does not, or not that many: a
        # ValueError (a 500 at the gateway) once; and digits of other scripts.
        *("²", "9" * 5000, "\u0661", "\uff11"),
    ],
)
def test_a_bad_track_is_refused(text):
    refused = _refusal(track=text)
    assert refused.option == "track"
    assert refused.allowed == "0-63 or a language code"
    assert repr(text) in refused.message


@pytest.mark.parametrize(("text", "channels"), [("mono", "mono"), ("Stereo", "stereo")])
def test_channels_are_mono_or_stereo(text, channels):
    assert _options(channels=text).channels == channels


@pytest.mark.parametrize("text", ["5.1", "left", "2", "monophonic"])
def test_other_channels_are_refused(text):
    refused = _refusal(channels=text)
    assert (refused.option, refused.allowed) == ("channels", ["mono", "stereo"])


# --- the form as a whole -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [("bitrate", "128k"), ("Format", "opus"), ("", "x")])
def test_an_unknown_option_is_refused_naming_the_options(name, value):
    refused = _refusal(**{name: value})
    assert refused.option == name
    assert refused.allowed == list(OPTION_NAMES)
    assert refused.message.startswith(f"{name!r} is not an option; the options are format, ")


@pytest.mark.parametrize("empty", ["", "  ", "\t\n"])
def test_an_empty_field_is_an_option_not_given(empty):
    every_field = dict.fromkeys((*OPTION_NAMES, "not-an-option"), empty)
    assert parse_options(every_field) == (DEFAULT_OPTIONS, [])
    assert parse_options({}) == (DEFAULT_OPTIONS, [])
    assert DEFAULT_OPTIONS.output is FORMATS["mp3"]


@pytest.mark.parametrize(("text", "name"), [("OPUS", "opus"), (".flac", "flac"), (" m4a ", "m4a")])
def test_a_format_is_taken_in_any_case_with_or_without_its_dot(text, name):
    assert _options(format=text).format == name


@pytest.mark.parametrize("text", ["aac", "ogg", "mp4", "mp3.mp3"])
def test_a_format_not_in_the_catalog_is_refused_naming_the_formats(text):
    refused = _refusal(format=text)
    assert (refused.option, refused.allowed) == ("format", list(FORMATS))
    assert refused.message == f"format must be one of mp3, m4a, opus, flac, wav, not {text!r}."


def test_options_stored_on_a_job_read_back_the_same():
    options = _options(
        format="opus", quality="96K", start="0:10", end="1:00", normalize="ebu", track="eng"
    )
    stored = json.loads(json.dumps(options.model_dump(mode="json")))
    assert ConversionOptions.model_validate(stored) == options


def test_public_shows_every_option_with_defaults_filled_in():
    assert DEFAULT_OPTIONS.public() == {
        "format": "mp3",
        "quality": "V2",
        "start": None,
        "end": None,
        "normalize": None,
        "track": None,
        "channels": None,
    }
    assert list(DEFAULT_OPTIONS.public()) == list(OPTION_NAMES)


# --- copy or re-encode --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "codec", "decodes", "copies"),
    [
        ({}, "mp3", False, True),
        ({"format": "m4a"}, "aac", False, True),
        ({"format": "opus"}, "opus", False, True),
        ({"format": "flac"}, "flac", False, True),
        ({"format": "wav"}, "pcm_s16le", False, True),
        ({"quality": "V2"}, "mp3", True, False),  # chosen, even the default: honoured
        ({"format": "m4a", "quality": "192k"}, "aac", True, False),
        ({"normalize": "-16"}, "mp3", True, False),
        ({"channels": "mono"}, "mp3", True, False),
        ({"start": "10", "end": "20"}, "mp3", True, False),  # a copy cut keeps the old length
        ({"end": "20"}, "flac", True, False),
        ({"track": "1"}, "mp3", False, True),
        ({"format": "flac", "quality": "V2"}, "flac", False, True),  # ignored, not chosen
        ({}, "aac", False, False),  # another codec
        ({"format": "opus"}, "vorbis", False, False),
        ({"format": "wav"}, "pcm_s24le", False, False),
        ({}, None, False, False),
        ({}, "", False, False),
    ],
)
def test_a_stream_is_copied_only_when_it_is_the_formats_codec_and_nothing_decodes(
    fields, codec, decodes, copies
):
    options, _ = parse_options(fields)
    assert options.decodes() is decodes
    assert options.copies(codec) is copies


# --- in words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "summary"),
    [
        ({}, "MP3 V2"),
        ({"quality": "320k"}, "MP3 320k"),
        ({"format": "m4a"}, "AAC 192k"),
        (
            {"format": "opus", "quality": "96k", "start": "10", "end": "1:00", "normalize": "-16"},
            "Opus 96k, 0:10-1:00, normalized to -16 LUFS",
        ),
        ({"format": "flac", "quality": "V2"}, "FLAC"),
        ({"format": "wav", "channels": "mono"}, "WAV, mono"),
        ({"start": "1:30.5"}, "MP3 V2, 1:30.5-end"),
        ({"end": "3723.25"}, "MP3 V2, 0:00-1:02:03.25"),
        ({"normalize": "ebu", "track": "eng"}, "MP3 V2, normalized to -23 LUFS, audio track eng"),
        ({"normalize": "-16.5"}, "MP3 V2, normalized to -16.5 LUFS"),
        ({"track": "1", "channels": "stereo"}, "MP3 V2, audio track 1, stereo"),
    ],
)
def test_the_summary_says_the_options_in_words(fields, summary):
    options, _ = parse_options(fields)
    assert options.summary() == summary


@pytest.mark.parametrize(
    ("fields", "summary"),
    [
        ({}, "MP3 (copied without re-encoding)"),
        ({"format": "opus", "track": "1"}, "Opus (copied without re-encoding), audio track 1"),
        ({"format": "flac", "track": "eng"}, "FLAC (copied without re-encoding), audio track eng"),
    ],
)
def test_a_copied_streams_summary_names_no_quality_of_ours(fields, summary):
    """A copied stream has the source's quality: `MP3 V2` would be untrue of it."""
    options, _ = parse_options(fields)
    assert options.copies(next(iter(options.output.copy_codecs)))
    assert options.summary(copied=True) == summary


@pytest.mark.parametrize(
    ("name", "short"),
    [("mp3", "MP3"), ("m4a", "AAC"), ("opus", "Opus"), ("flac", "FLAC"), ("wav", "WAV")],
)
def test_each_format_has_a_short_label(name, short):
    assert FORMATS[name].short_label == short


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (5, "0:05"),
        (90.5, "1:30.5"),
        (0.1, "0:00.1"),
        (61.25, "1:01.25"),
        (3599.999, "59:59.999"),
        (3600, "1:00:00"),
        (3723.25, "1:02:03.25"),
        (604800, "168:00:00"),
        # Rounded to the millisecond as a whole; it once wrote 59.9999 as "0:591".
        (59.9999, "1:00"),
        (3599.9996, "1:00:00"),
        (1.0004, "0:01"),
        (0.0996, "0:00.1"),
    ],
)
def test_clock_writes_seconds_as_a_clock(seconds, text):
    assert clock(seconds) == text


# --- GET /formats -------------------------------------------------------------------------


def test_describe_lists_every_format_as_the_catalog_has_it():
    described = describe()
    assert described["default_format"] == DEFAULT_FORMAT
    assert [entry["name"] for entry in described["formats"]] == list(FORMATS)
    for entry in described["formats"]:
        fmt = FORMATS[entry["name"]]
        assert entry == {
            "name": fmt.name,
            "label": fmt.label,
            "extension": fmt.extension,
            "mime_type": fmt.mime_type,
            "lossless": fmt.lossless,
            "default_quality": fmt.default_quality,
            "qualities": [{"name": q.name, "description": q.description} for q in fmt.qualities],
            "copied_from": sorted(fmt.copy_codecs),
        }


def test_describe_lists_every_option_with_what_the_parser_takes():
    options = describe()["options"]
    assert list(options) == list(OPTION_NAMES)
    for name, entry in options.items():
        assert entry["description"], name
        assert "default" in entry, name
    assert options["format"]["values"] == list(FORMATS)
    assert options["format"]["default"] == DEFAULT_FORMAT
    assert options["channels"]["values"] == list(CHANNELS)
    normalize = options["normalize"]
    assert (normalize["minimum"], normalize["maximum"]) == LOUDNESS_RANGE
    assert normalize["names"] == LOUDNESS_NAMES
    # What it offers is what parse_options takes.
    for fmt in describe()["formats"]:
        for quality in fmt["qualities"]:
            assert _options(format=fmt["name"], quality=quality["name"]).quality_chosen
    for value in options["channels"]["values"]:
        assert _options(channels=value).channels == value
    for name in normalize["names"]:
        assert _options(normalize=name).normalize == LOUDNESS_NAMES[name]


def test_describe_is_json():
    assert json.loads(json.dumps(describe())) == describe()

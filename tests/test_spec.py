"""state_spec.txt parsing and formatting."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.codec.errors import ModelError
from app.codec.spec import ConvStateSpec, StateSpec, format_state_spec, parse_state_spec
from conftest import FIXTURES

GOOD = """\
# Mimi streaming state spec
# num_codebooks=8
# format: kind name channels temporal
[encoder]
conv enc_0 1 6
conv ds 512 2
[decoder]
conv_tr us 512 2
conv dec_14 64 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "state_spec.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_good(tmp_path: Path) -> None:
    spec = parse_state_spec(write(tmp_path, GOOD))
    assert spec == StateSpec(
        num_codebooks=8,
        encoder=(ConvStateSpec("conv", "enc_0", 1, 6), ConvStateSpec("conv", "ds", 512, 2)),
        decoder=(ConvStateSpec("conv_tr", "us", 512, 2), ConvStateSpec("conv", "dec_14", 64, 2)),
    )
    assert spec.encoder[0].input_name == "past_conv_enc_0_state"
    assert spec.decoder[0].output_name == "present_conv_us_state"
    assert spec.encoder[1].shape == (1, 512, 2)


def test_format_matches_published_layout(tmp_path: Path) -> None:
    assert format_state_spec(parse_state_spec(write(tmp_path, GOOD))) == GOOD


def test_blank_lines_and_extra_comments_are_ignored(tmp_path: Path) -> None:
    text = "# hello\n\n" + GOOD.replace("[decoder]", "\n# decoder next\n[decoder]") + "\n\n"
    assert parse_state_spec(write(tmp_path, text)) == parse_state_spec(write(tmp_path, GOOD))


@pytest.mark.parametrize("variant", ["tiny-8cb", "tiny-16cb", "tiny-8cb-fp16", "tiny-16cb-fp16"])
def test_fixture_specs_round_trip(variant: str) -> None:
    path = FIXTURES / variant / "state_spec.txt"
    if not path.is_file():
        pytest.skip(f"fixture {variant} missing")
    spec = parse_state_spec(path)
    assert spec.num_codebooks == (16 if "16cb" in variant else 8)
    assert len(spec.encoder) == 11 and len(spec.decoder) == 11
    assert [s.name for s in spec.decoder][:3] == ["us", "dec_0", "dec_2"]
    assert format_state_spec(spec) == path.read_text(encoding="utf-8")


BAD_CASES = {
    "no_num_codebooks": (GOOD.replace("# num_codebooks=8\n", ""), "num_codebooks"),
    "zero_num_codebooks": (GOOD.replace("num_codebooks=8", "num_codebooks=0"), "line 2"),
    "bad_num_codebooks": (GOOD.replace("num_codebooks=8", "num_codebooks=eight"), "line 2"),
    "unknown_section": (GOOD.replace("[decoder]", "[decoders]"), "line 7: unknown section [decoders]"),
    "outside_section": ("# num_codebooks=8\nconv enc_0 1 6\n" + GOOD, "line 2: 'conv enc_0 1 6' is outside"),
    "too_few_fields": (GOOD.replace("conv ds 512 2", "conv ds 512"), "line 6: 'conv ds 512' has 3 fields"),
    "too_many_fields": (GOOD.replace("conv ds 512 2", "conv ds 512 2 9"), "line 6: 'conv ds 512 2 9' has 5"),
    "unknown_kind": (GOOD.replace("conv_tr us", "deconv us"), "line 8: unknown kind 'deconv'"),
    "non_integer": (GOOD.replace("conv ds 512 2", "conv ds 5x2 2"), "line 6: channels '5x2' is not an integer"),
    "float_number": (GOOD.replace("conv ds 512 2", "conv ds 512 2.0"), "line 6: temporal '2.0'"),
    "zero_number": (GOOD.replace("conv ds 512 2", "conv ds 512 0"), "line 6: temporal is 0"),
    "negative_number": (GOOD.replace("conv ds 512 2", "conv ds -3 2"), "line 6: channels is -3"),
    "duplicate_name": (GOOD.replace("conv ds 512 2", "conv enc_0 512 2"), "line 6: duplicate name 'enc_0'"),
    "duplicate_section": (GOOD + "[encoder]\nconv x 1 1\n", "line 10: section [encoder] appears twice"),
    "empty_section": (GOOD.replace("conv_tr us 512 2\nconv dec_14 64 2\n", ""), "line 7: section [decoder] is empty"),
    "missing_section": (GOOD.split("[decoder]")[0], "no [decoder] section"),
    "contradicting_k": (GOOD.replace("# format", "# num_codebooks=16\n# format"), "contradicts"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_malformed_spec_names_file_and_line(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CASES[case]
    with pytest.raises(ModelError) as info:
        parse_state_spec(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith("state_spec.txt"), message
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"state_spec\.txt: state spec file not found"):
        parse_state_spec(tmp_path / "state_spec.txt")


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=12)
_entries = st.lists(
    st.tuples(st.sampled_from(["conv", "conv_tr"]), _names, st.integers(1, 4096), st.integers(1, 64)),
    min_size=1,
    max_size=8,
    unique_by=lambda e: e[1],
).map(lambda items: tuple(ConvStateSpec(*item) for item in items))
_specs = st.builds(StateSpec, num_codebooks=st.integers(1, 64), encoder=_entries, decoder=_entries)


@given(spec=_specs)
def test_parse_inverts_format(tmp_path_factory: pytest.TempPathFactory, spec: StateSpec) -> None:
    path = tmp_path_factory.mktemp("spec") / "state_spec.txt"
    path.write_text(format_state_spec(spec), encoding="utf-8")
    assert parse_state_spec(path) == spec

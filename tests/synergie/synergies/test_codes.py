import pytest

from synergie.synergies.codes import WasteCodeError, closeness, parse_waste_code


def test_codes_read_with_or_without_spaces_and_the_hazard_star() -> None:
    code = parse_waste_code("16 06 01*")
    assert (code.code, code.hazardous, code.chapter, code.sub_chapter) == (
        "160601",
        True,
        "16",
        "1606",
    )
    assert str(code) == "16 06 01*"
    assert parse_waste_code("150101") == parse_waste_code(" 15 01 01 ")
    assert not parse_waste_code("150101").hazardous


@pytest.mark.parametrize("text", ["15 01", "1501011", "carton", "00 01 01", "21 01 01", ""])
def test_what_is_not_a_code_is_refused_in_french(text: str) -> None:
    with pytest.raises(WasteCodeError, match="liste"):
        parse_waste_code(text)


def test_closeness_counts_shared_levels() -> None:
    a = parse_waste_code("15 01 01")
    assert closeness(a, parse_waste_code("15 01 01")) == 3
    assert closeness(a, parse_waste_code("15 01 05")) == 2
    assert closeness(a, parse_waste_code("15 02 02*")) == 1
    assert closeness(a, parse_waste_code("20 01 01")) == 0

import pytest

from catalog.errors import InvalidVersion
from catalog.versions import Version, sort_versions


def test_two_part_versions_sort_numerically():
    assert sort_versions(["0.9", "0.10", "0.1", "0.2"]) == ["0.1", "0.2", "0.9", "0.10"]
    assert max(["0.9", "0.10"], key=Version.parse) == "0.10"


def test_two_and_three_part_versions_compare_as_numbers():
    assert Version.parse("0.9") < Version.parse("0.9.1") < Version.parse("0.10")
    assert Version.parse("3.71") < Version.parse("4.0")
    assert Version.parse("0.9") == Version.parse("0.9.0")
    assert Version.parse("0.29") <= Version.parse("0.29.0") <= Version.parse("0.29")
    assert Version.parse("v1.7.0") == Version.parse("1.7.0")
    assert Version.parse("1.7.0+build.5") == Version.parse("1.7.0")


def test_text_is_kept_as_written():
    version = Version.parse("0.10")
    assert str(version) == "0.10"
    assert version.full == "0.10.0"
    assert Version.parse("1.7.0").short == "1.7"
    assert Version.parse("1.7.1").short == "1.7.1"


def test_prereleases_sort_before_their_release():
    assert Version.parse("1.0.0-rc.1") < Version.parse("1.0.0")
    assert Version.parse("1.0.0-rc.1").is_prerelease
    assert not Version.parse("1.0").is_prerelease


def test_equal_precedence_still_has_one_order():
    a, b = Version.parse("0.9"), Version.parse("0.9.0")
    assert a == b and hash(a) == hash(b)
    assert sort_versions(["0.9.0", "0.9"]) == sort_versions(["0.9", "0.9.0"]) == ["0.9", "0.9.0"]


@pytest.mark.parametrize("text", ["", "latest", "0.x", "1.2.3.4", "01.2", "-1.0", "0.1 ", "1" * 200])
def test_garbage_is_refused(text):
    if text == "0.1 ":
        assert Version.parse(text).text == "0.1"  # surrounding space is trimmed, not an error
        return
    with pytest.raises(InvalidVersion):
        Version.parse(text)


def test_single_number_only_when_allowed():
    assert Version.parse("1").full == "1.0.0"
    with pytest.raises(InvalidVersion):
        Version.parse("1", allow_short=False)


def test_non_string_is_refused():
    with pytest.raises(InvalidVersion, match="must be a string"):
        Version.parse(0.1)  # type: ignore[arg-type]

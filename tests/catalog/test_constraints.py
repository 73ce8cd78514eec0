"""Version constraints as Tekton's hub resolver reads them."""

import pytest

from catalog.constraints import Constraint
from catalog.errors import InvalidRequest
from catalog.versions import Version

CATALOG = ["0.1", "0.5", "0.7", "0.8", "0.9", "0.9.1", "0.10", "1.0", "1.2.0-rc.1", "2.0"]


@pytest.mark.parametrize(
    ("constraint", "best", "allowed"),
    [
        ("0.9", "0.9", {"0.9"}),
        ("0.9.0", "0.9", {"0.9"}),
        ("=0.10", "0.10", {"0.10"}),
        (">=0.7, <2.0", "1.0", {"0.7", "0.8", "0.9", "0.9.1", "0.10", "1.0"}),
        ("~>0.9", "0.10", {"0.9", "0.9.1", "0.10"}),  # 0.9 and anything below 1.0
        ("~>0.9.0", "0.9.1", {"0.9", "0.9.1"}),  # 0.9.x only
        ("~>1", "2.0", {"1.0", "2.0"}),
        ("!=2.0", "1.0", set(CATALOG) - {"2.0", "1.2.0-rc.1"}),
        (">0.9, !=0.10, <= 1.0", "1.0", {"0.9.1", "1.0"}),
        ("< 0.5", "0.1", {"0.1"}),
        (">5", None, set()),
    ],
)
def test_the_greatest_matching_version_wins(constraint, best, allowed):
    parsed = Constraint.parse(constraint)
    versions = [Version.parse(v) for v in CATALOG]
    chosen = parsed.best(versions)
    assert (chosen.text if chosen else None) == best
    assert {v.text for v in versions if parsed.allows(v) and not v.is_prerelease} == allowed


def test_prereleases_are_skipped_even_when_they_match():
    versions = [Version.parse(v) for v in ("1.0", "1.2.0-rc.1")]
    assert Constraint.parse(">=1.1").best(versions) is None
    assert Constraint.parse(">=1.0").best(versions).text == "1.0"


@pytest.mark.parametrize("text", ["", " ", ">=", "=> 1.0", ">=1.0,,<2", "latest", "1.0 2.0", ",".join(["1"] * 17)])
def test_malformed_constraints_are_refused(text):
    with pytest.raises(InvalidRequest, match="malformed constraint"):
        Constraint.parse(text)

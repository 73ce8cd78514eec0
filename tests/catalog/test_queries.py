"""Queries over the index of the test catalog."""

from sqlalchemy.orm import Session

from catalog.queries import CatalogIndex, SearchQuery


def test_filter_choices_ignore_case(engine, indexed):
    with Session(engine) as s:
        facets = CatalogIndex(s).facets()
    tags = facets["tag"]
    assert len({t.lower() for t in tags}) == len(tags)
    assert "cli" in {t.lower() for t in tags} and "security" in {t.lower() for t in tags}
    assert facets["kind"] == ["Task", "Pipeline", "StepAction"]
    assert facets["catalog"] == ["tekton"]


def test_search_ranks_name_matches_first_and_pages(engine, indexed):
    with Session(engine) as s:
        index = CatalogIndex(s)
        found = index.search(SearchQuery(text="git"))
        names = [v.resource.name for v in found.views]
        assert names[:2] == ["git-clone", "git-clone"]  # the Task and the StepAction, exact name first
        assert found.total == len(found.views)
        page = index.search(SearchQuery(text="git", limit=1, offset=1))
        assert page.total == found.total and [v.resource.name for v in page.views] == names[1:2]
        by_update = index.search(SearchQuery(sort="updated")).views
        stamps = [v.latest.modified_at for v in by_update]
        assert stamps == sorted(stamps, reverse=True)

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
        views, total = index.search(SearchQuery(text="git"))
        names = [v.resource.name for v in views]
        assert names[:2] == ["git-clone", "git-clone"]  # the Task and the StepAction, exact name first
        assert total == len(views)
        page, same_total = index.search(SearchQuery(text="git", limit=1, offset=1))
        assert same_total == total and [v.resource.name for v in page] == names[1:2]
        by_update, _ = index.search(SearchQuery(sort="updated"))
        stamps = [v.latest.modified_at for v in by_update]
        assert stamps == sorted(stamps, reverse=True)

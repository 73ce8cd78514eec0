"""The OpenAPI document the hub serves, and a fuzz of every operation in it: bad input is a 4xx, never a 5xx."""

import dataclasses
import tempfile
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.stateful import run_state_machine_as_test

from hub.app import create_app
from tests.hub.test_auth import bearer, issue

# Hypothesis caches constants of the source in ./.hypothesis, from the moment it collects this module: keep that
# cache out of the working tree.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "taskhub-hypothesis")

# Enough to reach each operation's edges (the examples and coverage phases add their cases on top) while the whole
# fuzz stays well under a minute on SQLite.
MAX_EXAMPLES = 40
# No example database: nothing is written into the working tree. The stateful phase (sequences that follow the
# document's links: a query to the resources it lists, a new token to its revocation) runs in its own test.
FUZZ_CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
    "phases": {"stateful": {"enabled": False}},
}
CONFORMANCE_CONFIG = {
    "generation": {"max-examples": 10, "mode": "positive", "database": "none"},
    "phases": {"stateful": {"enabled": False}},
}
# Every scope but catalog:publish, whose endpoint pushes to whatever registry the body names: the fuzz reaches it
# only as far as the scope check. Refreshes and registry syncs only touch the local test catalog.
FUZZ_SCOPES = ("read", "tokens:create", "catalog:refresh", "registry:sync", "objects:read", "objects:write")


def test_openapi_document_is_valid_and_lists_every_api(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.0.")
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.0 meta-schema
    assert set(document["paths"]["/v1/resolve"]) == {"get", "post"}
    for path in ("/v1/query", "/api/v1/packages/search", "/v1/tokens", "/v1/catalog/{name}/publish"):
        assert path in document["paths"]
    as_yaml = client.get("/openapi.yaml")
    assert as_yaml.status_code == 200 and as_yaml.text.startswith("openapi: 3.0")


@pytest.fixture
def fuzzed_hub(settings, indexed):
    """The hub serving the test catalog, without rate limits (a 429 would hide the handlers from the fuzz)."""
    return create_app(dataclasses.replace(settings, rate_limit_resolve="0", rate_limit_search="0"))


@pytest.fixture
def fuzz_token(fuzzed_hub):
    return issue(fuzzed_hub, "openapi-fuzz", *FUZZ_SCOPES)


@pytest.fixture
def fuzz_schema(fuzzed_hub):
    config = SchemathesisConfig.from_dict(FUZZ_CONFIG)
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzzed_hub, config=config)


@pytest.fixture
def conformance_schema(fuzzed_hub):
    config = SchemathesisConfig.from_dict(CONFORMANCE_CONFIG)
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzzed_hub, config=config)


STATEFUL_CONFIG = {"generation": {"max-examples": 25, "mode": "all", "database": "none"}}


@pytest.fixture
def stateful_schema(fuzzed_hub):
    config = SchemathesisConfig.from_dict(STATEFUL_CONFIG)
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzzed_hub, config=config)


fuzz = schemathesis.pytest.from_fixture("fuzz_schema")
conformance = schemathesis.pytest.from_fixture("conformance_schema")


# Thousands of requests: run once, on SQLite, to fit the budget.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@fuzz.parametrize()
def test_no_operation_answers_bad_input_with_a_server_error(case, fuzz_token):
    # Beside no 5xx: every status is a documented one, and a method an operation does not take is a 405 whose
    # Allow header names the methods it does take.
    checks = [not_a_server_error, status_code_conformance, unsupported_method]
    case.call_and_validate(headers=bearer(fuzz_token), checks=checks)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@conformance.parametrize()
def test_answers_to_valid_requests_are_as_documented(case, fuzz_token):
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    case.call_and_validate(headers=bearer(fuzz_token), checks=checks)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_linked_sequences_of_operations_answer_as_documented(stateful_schema, fuzz_token):
    class LinkedCalls(stateful_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            return {"headers": bearer(fuzz_token)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

    assert stateful_schema.statistic.transitions.total >= 4  # the document's links: the phase has sequences to run
    run_state_machine_as_test(
        LinkedCalls, settings=hypothesis.settings(max_examples=25, deadline=None, stateful_step_count=4)
    )


@pytest.fixture
def adding_schema(fuzzed_hub):
    """The operations that add catalogs and registries, which need the admin scope the main fuzz leaves out; they
    fetch nothing (the first sync does), so any body is safe to send."""
    generation = {**FUZZ_CONFIG["generation"], "max-examples": 15}  # two operations, no schema links to follow
    config = SchemathesisConfig.from_dict({**FUZZ_CONFIG, "generation": generation})
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzzed_hub, config=config)
    return schema.include(operation_id=["addCatalog", "addRegistry"])


adding = schemathesis.pytest.from_fixture("adding_schema")


@pytest.fixture
def admin_token(fuzzed_hub):
    return issue(fuzzed_hub, "openapi-admin", "admin")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@adding.parametrize()
def test_adding_catalogs_answers_bad_input_with_a_client_error(case, admin_token):
    case.call_and_validate(headers=bearer(admin_token), checks=[not_a_server_error, status_code_conformance])

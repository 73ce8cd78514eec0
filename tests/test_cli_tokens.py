"""`taskhub token` run as a user runs it: real processes, real databases; the tokens then open the API."""

from hub.app import create_app
from hub.config import Settings
from tests.test_cli import run  # noqa: F401 (the fixture)


def test_create_list_revoke(run, tmp_path):  # noqa: F811
    run("db", "upgrade")
    created = run("token", "create", "ci", "--scope", "catalog:refresh", "--scope", "tokens:create", "--expires", "30d")
    token = created.stdout.strip()
    assert token.startswith("thub_") and "\n" not in token  # stdout is the token alone, for scripts
    assert "token ci (catalog:refresh, tokens:create) expires 20" in created.stderr
    assert "shown only now" in created.stderr
    forever = run("token", "create", "bot", "--scope", "read", "--expires", "never")
    assert "never expires: revoke it when done" in forever.stderr

    listed = run("token", "list").stdout
    assert listed.splitlines()[0] == "NAME\tSCOPES\tSTATE\tCREATED\tEXPIRES\tLAST USED\tREVOKED"
    assert "ci\tcatalog:refresh,tokens:create\tactive\t" in listed
    assert "bot\tread\tactive\t" in listed and "\tnever\t-\t-" in listed
    assert token not in listed and token[5:] not in listed

    # The token works against the hub, and `token list` then shows when it was used.
    app = create_app(Settings(data_dir=tmp_path / "data", database_url=run.env["TASKHUB_DATABASE_URL"]))
    answer = app.test_client().get("/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.get_json()["data"] == []  # a tokens:create token lists only the tokens it made
    app.extensions["taskhub.access_gate"].wait_for_token_uses()
    ci_row = next(line for line in run("token", "list").stdout.splitlines() if line.startswith("ci\t"))
    assert ci_row.split("\t")[5].startswith("20")  # LAST USED: a timestamp now

    again = run("token", "create", "ci", "--scope", "read", check=False)
    assert again.returncode == 1 and "a live token named 'ci' exists; revoke it first" in again.stderr
    assert run("token", "revoke", "ci").stdout.strip() == "revoked token ci"
    assert "ci\tcatalog:refresh,tokens:create\trevoked\t" in run("token", "list").stdout
    # A worker trusts what it verified for TASKHUB_TOKEN_CACHE_SECONDS; one that has not seen the token refuses it.
    other_worker = create_app(Settings(data_dir=tmp_path / "data", database_url=run.env["TASKHUB_DATABASE_URL"]))
    refused = other_worker.test_client().get("/v1/tokens", headers={"Authorization": token})
    assert refused.status_code == 401 and "'ci' was revoked" in refused.get_json(force=True)["message"]
    missing = run("token", "revoke", "ci", check=False)
    assert missing.returncode == 1 and "no live token named 'ci'" in missing.stderr


def test_bad_input_is_a_one_line_error(run):  # noqa: F811
    run("db", "upgrade")
    unknown = run("token", "create", "x", "--scope", "rating:read", check=False)
    assert unknown.returncode == 1
    assert "Error: unknown scope 'rating:read'; known scopes: read, catalog:refresh" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad_expiry = run("token", "create", "x", "--scope", "read", "--expires", "tomorrow", check=False)
    assert bad_expiry.returncode == 1 and "invalid expiry 'tomorrow'" in bad_expiry.stderr
    bad_name = run("token", "create", "Has Spaces", "--scope", "read", check=False)
    assert bad_name.returncode == 1 and "invalid token name 'Has Spaces'" in bad_name.stderr
    no_scope = run("token", "create", "x", check=False)
    assert no_scope.returncode == 2 and "Missing option '--scope'" in no_scope.stderr
    assert run("token", "list").stdout.splitlines()[1:] == []

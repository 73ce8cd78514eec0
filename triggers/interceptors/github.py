"""The GitHub core interceptor, which also serves Gitea (tektoncd/triggers: pkg/interceptors/github/github.go).

Checks in upstream's order: a form-encoded body is refused, `eventTypes` against X-Github-Event, `secretRef`
against X-Hub-Signature-256 (HMAC over the raw body, constant-time compare), then `addChangedFiles` (which
returns at once, so owners are not checked with it: upstream's behaviour) and `githubOwners`. GitHub API calls
go through the InterceptorHTTP port, so they reach only the addresses the hub allows.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

from catalog.manifests import ManifestError, load_documents
from triggers.headers import first_value
from triggers.interceptors import (
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    InterceptorRequest,
    InterceptorResponse,
    fail,
    proceed,
)
from triggers.interceptors.common import (
    CoreServices,
    ParamsError,
    SecretError,
    check_signature,
    checked_event,
    credential,
    read_secret,
    secret_ref,
)
from triggers.ports import InterceptorTransportError

FORM_REFUSED = "form parameter encoding not supported, please change the hook to send JSON payloads"
_OK_TO_TEST = re.compile(r"(^|\n)/ok-to-test(\r\n|\r|\n|$)")
_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')
MAX_PAGES = 30  # 3,000 changed files: GitHub's own limit for the PR files listing


class GitHubAPIError(Exception):
    """A GitHub API call that failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def github(request: InterceptorRequest, services: CoreServices) -> InterceptorResponse:
    """Process one request as the github ClusterInterceptor does."""
    if first_value(request.header, "Content-Type") == "application/x-www-form-urlencoded":
        return fail(INVALID_ARGUMENT, FORM_REFUSED)
    checked = checked_event(request, "X-Github-Event")
    if isinstance(checked, InterceptorResponse):
        return checked
    event, ref = checked
    try:
        changed_files = _enabled_block(request.interceptor_params, "addChangedFiles")
        owners = _enabled_block(request.interceptor_params, "githubOwners")
    except ParamsError as exc:
        return fail(INVALID_ARGUMENT, f"failed to parse interceptor params: {exc}")
    if ref is not None:
        found = credential(
            request, services, ref, interceptor="github", header="X-Hub-Signature-256", missing_code=FAILED_PRECONDITION
        )
        if isinstance(found, InterceptorResponse):
            return found
        problem = check_signature(found[0], request.body.encode(), found[1])
        if problem:
            return fail(FAILED_PRECONDITION, problem)
    if changed_files is not None and event in ("pull_request", "push"):
        return _add_changed_files(request, services, changed_files, event)
    if owners is not None and event in ("pull_request", "issue_comment"):
        return _check_owners(request, services, owners, event)
    return proceed()


def _enabled_block(params: Any, name: str) -> dict[str, Any] | None:
    """An `{enabled: true, ...}` param block, or None when absent or disabled."""
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ParamsError(f"json: cannot unmarshal {name} into an object")
    return value if value.get("enabled") is True else None


def _token(request: InterceptorRequest, services: CoreServices, block: dict[str, Any], what: str) -> str:
    ref = secret_ref(block, "personalAccessToken")
    if ref is None:
        return ""
    if not ref["secretKey"]:
        raise SecretError(f"github interceptor {what}.secretKey is empty")
    return read_secret(services, request.context.namespace, ref).decode("utf-8", "replace")


def _api_base(request: InterceptorRequest, services: CoreServices) -> str:
    host = first_value(request.header, "X-Github-Enterprise-Host")
    return f"https://{host}/api/v3/" if host else services.github_api


def _api_get(services: CoreServices, url: str, token: str) -> tuple[Any, str]:
    if services.http is None:
        raise GitHubAPIError("calls to the GitHub API are not enabled on this hub")
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "taskhub-triggers"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        reply = services.http.send("GET", url, headers)
    except InterceptorTransportError as exc:
        raise GitHubAPIError(f"GET {url}: {exc}") from None
    if reply.status != 200:
        raise GitHubAPIError(f"GET {url}: {reply.status}", reply.status)
    try:
        return json.loads(reply.body), reply.headers.get("link", "")
    except ValueError:
        raise GitHubAPIError(f"GET {url}: the answer is not JSON") from None


def _repository(body: dict[str, Any]) -> tuple[str, str]:
    repository = body.get("repository")
    if not isinstance(repository, dict):
        raise ValueError("payload body missing 'repository' field")
    full_name = repository.get("full_name")
    if not isinstance(full_name, str) or "/" not in full_name:
        raise ValueError("payload body missing 'repository.full_name' field")
    owner, _, repo = full_name.partition("/")
    return owner, repo.split("/")[0]


def _add_changed_files(
    request: InterceptorRequest, services: CoreServices, block: dict[str, Any], event: str
) -> InterceptorResponse:
    try:
        token = _token(request, services, block, "githubToken")
    except (SecretError, ParamsError) as exc:
        return fail(FAILED_PRECONDITION, f"error getting secret: {exc}")
    try:
        body = json.loads(request.body) if request.body else None
        if not isinstance(body, dict):
            raise ValueError("body is empty" if not request.body else "body is not a JSON object")
        number = body.get("number")
        if event == "pull_request" and not isinstance(number, int | float):
            raise ValueError("pull_request body missing 'number' field")
        owner, repo = _repository(body)
        files: list[str] = []
        commits = body.get("commits")
        for commit in commits if isinstance(commits, list) else []:
            for key in ("added", "modified", "removed"):
                names = commit.get(key) if isinstance(commit, dict) else None
                if not isinstance(names, list):
                    raise ValueError(f"payload body missing 'commits.*.{key}' field")
                files.extend(str(name) for name in names)
    except ValueError as exc:
        return fail(FAILED_PRECONDITION, f"error parsing body: {exc}")
    if event == "pull_request":
        try:
            files = _pull_request_files(request, services, owner, repo, int(number or 0), token)
        except GitHubAPIError as exc:
            return fail(FAILED_PRECONDITION, f"error getting changed files: {exc}")
    return proceed({"changed_files": ",".join(files)})


def _pull_request_files(
    request: InterceptorRequest, services: CoreServices, owner: str, repo: str, number: int, token: str
) -> list[str]:
    url = f"{_api_base(request, services)}repos/{quote(owner)}/{quote(repo)}/pulls/{number}/files?per_page=100"
    files: list[str] = []
    for _ in range(MAX_PAGES):
        page, link = _api_get(services, url, token)
        files.extend(str(item.get("filename", "")) for item in page if isinstance(item, dict))
        following = _NEXT_LINK.search(link)
        if not following:
            break
        url = following.group(1)
    return files


def _check_owners(
    request: InterceptorRequest, services: CoreServices, block: dict[str, Any], event: str
) -> InterceptorResponse:
    try:
        token = _token(request, services, block, "personalAccessToken")
    except (SecretError, ParamsError) as exc:
        return fail(FAILED_PRECONDITION, f"error getting github token: {exc}")
    check_type = block.get("checkType", "")
    if not token and check_type != "none":
        return fail(
            FAILED_PRECONDITION,
            "checkType is set to check org or repo members but no personalAccessToken was supplied",
        )
    try:
        body = json.loads(request.body) if request.body else None
        if not isinstance(body, dict):
            raise ValueError("payload body is empty")
        owner, repo = _repository(body)
        sender = (body.get("sender") or {}).get("login", "")
        comment = (body.get("comment") or {}).get("body", "") if event == "issue_comment" else ""
    except (ValueError, AttributeError) as exc:
        return fail(FAILED_PRECONDITION, f"error parsing body: {exc}")
    base = _api_base(request, services)
    try:
        allowed = _is_owner(services, base, owner, repo, str(sender), check_type, token)
        if allowed and event == "pull_request":
            return proceed()
        if not (_OK_TO_TEST.search(str(comment)) and allowed):
            return fail(FAILED_PRECONDITION, "owners check requirements not met")
    except GitHubAPIError as exc:
        return fail(FAILED_PRECONDITION, f"error checking owner verification: {exc}")
    return proceed()


def _is_owner(services: CoreServices, base: str, owner: str, repo: str, sender: str, check: str, token: str) -> bool:
    if check in ("orgMembers", "all"):
        try:
            members, _ = _api_get(services, f"{base}orgs/{quote(owner)}/public_members", token)
        except GitHubAPIError as exc:
            if exc.status != 404:
                raise
            members = []
        if any(isinstance(m, dict) and m.get("login") == sender for m in members):
            return True
    if check in ("repoMembers", "all"):
        collaborators, _ = _api_get(services, f"{base}repos/{quote(owner)}/{quote(repo)}/collaborators", token)
        if any(isinstance(c, dict) and c.get("login") == sender for c in collaborators):
            return True
    try:
        content, _ = _api_get(services, f"{base}repos/{quote(owner)}/{quote(repo)}/contents/OWNERS", token)
    except GitHubAPIError as exc:
        if exc.status == 404:
            return False
        raise
    if not isinstance(content, dict) or content.get("type") != "file":
        raise GitHubAPIError("referenced file inside the Github Repository OWNERS is a directory")
    try:
        documents = load_documents(base64.b64decode(content.get("content", "")).decode())
    except (ValueError, ManifestError) as exc:
        raise GitHubAPIError(f"OWNERS: {exc}") from None
    owners = documents[0] if documents else None
    names = [] if not isinstance(owners, dict) else (owners.get("approvers") or []) + (owners.get("reviewers") or [])
    return any(str(name).lower() == sender.lower() for name in names)

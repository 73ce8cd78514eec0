"""Tekton's status vocabulary: the `Succeeded` condition, its reasons and messages, and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# TaskRun reasons (pkg/apis/pipeline/v1/taskrun_types.go)
TR_SUCCEEDED = "Succeeded"
TR_STARTED = "Started"
TR_RUNNING = "Running"
TR_STEP_FAILED = "StepFailed"
TR_FAILED = "Failed"
TR_FAILURE_IGNORED = "FailureIgnored"
TR_TIMEOUT = "TaskRunTimeout"
TR_CANCELLED = "TaskRunCancelled"
TR_TO_BE_RETRIED = "ToBeRetried"
TR_VALIDATION_FAILED = "TaskRunValidationFailed"
TR_TASK_VALIDATION_FAILED = "TaskValidationFailed"
TR_RESOLUTION_FAILED = "TaskRunResolutionFailed"
TR_INVALID_PARAM_VALUE = "InvalidParamValue"
TR_CONFIG_ERROR = "CreateContainerConfigError"
TR_RESULT_TOO_LARGE = "TaskRunResultLargerThanAllowedLimit"
TR_SIDECAR_FAILED = "SidecarFailed"

# PipelineRun reasons (pkg/apis/pipeline/v1/pipelinerun_types.go)
PR_SUCCEEDED = "Succeeded"
PR_COMPLETED = "Completed"
PR_FAILED = "Failed"
PR_CANCELLED = "Cancelled"
PR_TIMEOUT = "PipelineRunTimeout"
PR_RUNNING = "Running"
PR_STOPPING = "PipelineRunStopping"
PR_TIMEOUT_RUNNING_FINALLY = "PipelineRunTimeoutRunningFinally"
PR_COULDNT_GET_PIPELINE = "CouldntGetPipeline"
PR_COULDNT_GET_TASK = "CouldntGetTask"
PR_VALIDATION_FAILED = "PipelineValidationFailed"
PR_INVALID_GRAPH = "PipelineInvalidGraph"
PR_PARAMETER_MISSING = "ParameterMissing"
PR_PARAMETER_TYPE_MISMATCH = "ParameterTypeMismatch"
PR_OBJECT_KEYS_MISSING = "ObjectParameterMissKeys"
PR_INVALID_PARAM_VALUE = "InvalidParamValue"
PR_INVALID_WORKSPACES = "InvalidWorkspaceBindings"
PR_INVALID_RESULT_REFERENCE = "InvalidTaskResultReference"
PR_INVALID_MATRIX_TYPES = "InvalidMatrixParameterTypes"
PR_COULDNT_GET_RESULT = "CouldntGetPipelineResult"
PR_CREATE_RUN_FAILED = "CreateRunFailed"
PR_CEL_EVALUATION_FAILED = "CELEvaluationFailed"

# status.skippedTasks[].reason (pipelinerun_types.go SkippingReason)
SKIP_WHEN = "When Expressions evaluated to false"
SKIP_PARENT = "Parent Tasks were skipped"
SKIP_MISSING_RESULTS = "Results were missing"
SKIP_STOPPING = "PipelineRun was stopping"
SKIP_PIPELINE_TIMEOUT = "PipelineRun timeout has been reached"
SKIP_TASKS_TIMEOUT = "PipelineRun Tasks timeout has been reached"
SKIP_FINALLY_TIMEOUT = "PipelineRun Finally timeout has been reached"
SKIP_EMPTY_MATRIX = "Matrix Parameters have an empty array"
TIMEOUT_SKIPS = (SKIP_PIPELINE_TIMEOUT, SKIP_TASKS_TIMEOUT, SKIP_FINALLY_TIMEOUT)

# step terminationReason values (pkg/pod/status.go)
STEP_COMPLETED = "Completed"
STEP_ERROR = "Error"
STEP_CONTINUED = "Continued"
STEP_SKIPPED = "Skipped"
STEP_TIMEOUT = "TimeoutExceeded"


def timestamp() -> str:
    """The current time as Kubernetes writes it (RFC 3339, UTC, whole seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def succeeded_condition(status: str, reason: str, message: str) -> dict[str, Any]:
    """A `Succeeded` condition as it appears in `status.conditions`."""
    return {
        "type": "Succeeded",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(),
    }


def condition_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The `Succeeded` condition of a run object (an `Unknown` one if it has none yet)."""
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == "Succeeded":
            return dict(cond)
    return {"type": "Succeeded", "status": "Unknown", "reason": "", "message": ""}

"""The embedded local executor: Tekton TaskRuns and PipelineRuns with steps as host processes."""

from runner.local.documents import resolver_from_documents, runnable_documents
from runner.local.errors import ResolutionError
from runner.local.executor import InvalidRunObject, LocalExecutor, LocalRun
from runner.local.pod import LogSink, StepLog
from runner.local.sandbox import SandboxUnavailable

__all__ = [
    "InvalidRunObject",
    "LocalExecutor",
    "LocalRun",
    "LogSink",
    "ResolutionError",
    "SandboxUnavailable",
    "StepLog",
    "resolver_from_documents",
    "runnable_documents",
]

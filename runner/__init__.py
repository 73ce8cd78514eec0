"""Runs PipelineRuns whose references point at the hub (see the runner issue); nothing here yet."""

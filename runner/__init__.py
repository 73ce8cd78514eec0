"""Runs: a TaskRun or PipelineRun resolved and pinned, run on a backend (local: the embedded executor; kubernetes:
real objects on a cluster) and recorded; the clients of remote hubs with the installer (remote_hub/), and taskhub as
a cluster's resolver (cluster_resolver/). Imports catalog (and jobs), never hub or Flask."""

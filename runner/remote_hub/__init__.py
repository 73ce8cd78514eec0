"""Clients of a remote hub API (Tekton Hub v1, Artifact Hub), and the installer that `taskhub hub install` uses."""

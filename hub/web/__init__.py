"""The web UI: catalog pages, run pages, and the rendering of READMEs and YAML."""

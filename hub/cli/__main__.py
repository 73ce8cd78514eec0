"""`python -m hub.cli`: the taskhub command, for the processes taskhub starts itself (serve's embedded worker)."""

from hub.cli import main

if __name__ == "__main__":
    main(prog_name="taskhub")

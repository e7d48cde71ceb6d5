"""``python -m daskflow ...``: the same as the ``daskflow`` console command."""

from daskflow.cli import console_main

if __name__ == "__main__":
    console_main()

"""``python -m gradviz``: the headless command line (see ``gradviz/cli.py``)."""
import os
import sys

from .cli import main

if __name__ == "__main__":
    status = main(sys.argv[1:])
    try:
        sys.stdout.flush()
    except BrokenPipeError:        # the reader went away (| head): no "Exception ignored" at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)

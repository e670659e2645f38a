"""Launch the GradViz desktop app: ``python main.py [SCENARIO.toml]``."""
import sys

from ui.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

import os
import sys
from pathlib import Path

# Headless Qt for every test run (CI has no screen); must be set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

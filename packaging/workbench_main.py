"""PyInstaller's entry point for the bundled app: the ``workbench`` command (the window by default)."""

import multiprocessing
import sys

from workbench.launcher import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

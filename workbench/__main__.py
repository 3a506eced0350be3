"""``python -m workbench`` runs the command line (and lets ``torchrun -m workbench`` launch it)."""

import sys

from workbench.launcher import main

sys.exit(main())

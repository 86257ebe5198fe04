"""``python -m mmbackbones`` runs the command line (same as the ``mmbackbones`` script)."""
import sys

from .cli import main

sys.exit(main())

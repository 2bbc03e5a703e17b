"""``python -m metamsc.validate``: the same as ``metamsc validate``."""

from . import main

raise SystemExit(main())

"""``python -m pipeline.onboard data/raw/<name>/``."""

from pipeline.onboard.command import main

raise SystemExit(main())

"""Credit-grading pipeline: payment ledger -> point-in-time features -> scorecard vs rule grading."""

__version__ = "0.1.0"

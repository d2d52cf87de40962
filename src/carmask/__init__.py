"""carmask: full-resolution car masks for the Kaggle Carvana challenge."""

__version__ = "0.1.0"

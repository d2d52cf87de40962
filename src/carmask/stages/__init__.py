"""The pipeline's stages, one module per step: manifest, split, encode, evaluate, threshold search, submission, report, cutouts.

Each is called by a thin rule script under ``workflow/scripts``."""

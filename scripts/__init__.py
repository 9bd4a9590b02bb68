"""Command-line helpers, run as modules from the repository root (python -m scripts.prepare_elpv,
python -m scripts.layers)."""

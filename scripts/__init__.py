"""Command-line helpers run from the repository root (python scripts/prepare_elpv.py, python -m scripts.layers)."""

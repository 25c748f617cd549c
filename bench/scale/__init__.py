"""`python -m bench scale`: the tracker at fleet scale (see bench/scale/main.py)."""

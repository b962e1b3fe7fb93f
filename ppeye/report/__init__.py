"""TRIPOD+AI reports of runs (tools/report.py)."""

"""The Grafana dashboard and its generator (``build_dashboard.py``)."""

"""Prometheus metrics of one node (``registry``) and the control loop's lag monitor (``looplag``)."""

"""Benchmarks: scripts that measure and report (never tests); run each as a script."""

"""``ponctl demo``: the simulated lab and the agent together, in one process.

This package is the one place that uses both :mod:`agent` and :mod:`simulator` (they never
import each other): it starts a lab, starts the agent against it, and drives the agent through
its HTTP API as an OSS would.
"""

"""Benchmarks: each module has ``run(quick: bool = False) -> dict`` printing ratios measured side
by side in one run. ``umwelt bench`` runs them."""

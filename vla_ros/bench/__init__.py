"""Benchmarks behind `vla-ros bench`: each module's `run(device, quick) -> {name: figure}`."""

"""The daemon's top layer: CLI, config loading, scheduler and service, metrics, export, report, demo."""

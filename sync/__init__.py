"""The daemon: config, store, sync runner, scheduler, CLI."""

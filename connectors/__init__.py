"""Marketplace connectors: the shared contract, HTTP layer, conformance kit and one package per platform."""

"""Inbound API surfaces, one module per dialect; each parses its own requests and frames its own answers."""

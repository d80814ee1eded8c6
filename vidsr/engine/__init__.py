"""Inference engines: run a deploy model on planes as fast as the device allows."""

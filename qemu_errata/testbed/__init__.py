"""testbed layer."""

"""vmm layer."""

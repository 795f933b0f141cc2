"""Canopy: one IDL, typed proxies and stubs, the same calls across every boundary."""

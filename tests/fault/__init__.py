"""Fault injection for h5vc: kills, two writers, a full disk, bit flips (see docs/reliability.md)."""

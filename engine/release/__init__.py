"""Releases: shards, exports, splits, publishing and reading."""

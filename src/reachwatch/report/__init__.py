"""Reports: what measurements mean, rendered for people (tables, HTML, PDF, exports)."""

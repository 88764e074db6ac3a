"""Raw schema, synthetic simulator and loaders for your own files."""

"""Raw data: the synthetic simulator, the documented raw schema, and loaders for your own files."""

"""The core every domain shares: profiles, AWS clients, paths, errors, presets, packaging."""

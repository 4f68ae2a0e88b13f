"""``telehub import``: streamed, resumable loading of Bundles and NDJSON into the hub."""

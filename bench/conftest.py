"""The benchmark is not a test: keep pytest from collecting (or importing) anything in this folder."""

collect_ignore_glob = ["*"]

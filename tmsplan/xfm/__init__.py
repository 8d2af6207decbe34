"""MNI -> patient transforms: point mappings, file readers, fit checks and registration."""

"""The patient's head: scalp surface, its cache (:class:`Head`), self-checks, landmarks, tissue."""

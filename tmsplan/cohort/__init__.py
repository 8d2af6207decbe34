"""Many patients: manifests, the batch runner and the cohort summary."""

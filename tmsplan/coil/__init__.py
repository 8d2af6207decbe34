"""The coil: the catalogue of coils and their reach, and placing a coil over a target."""

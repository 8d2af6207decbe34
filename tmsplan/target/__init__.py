"""Choosing a cortical target: the craving atlas, activation maps, connectivity, grey matter."""

"""Input and output: the image gate, bundled data, atomic writing, the plan record, Ctrl-C."""

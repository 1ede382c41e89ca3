"""Training engine on Lightning: data module, classifier module, the `train` job and the model bundle."""

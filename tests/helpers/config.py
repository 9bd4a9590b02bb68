"""A tiny TrainConfig factory for the tests."""

# Small enough that building all five networks and tracing both steps takes a few seconds on 2 CPU cores.
TINY = dict(category="test", channels=1, latent_size=8, batch_size=4)


def tiny_config(**overrides):
    """A TrainConfig for tiny models (c=1, latent 8); keyword arguments override any field."""
    from config import TrainConfig

    values = dict(TINY)
    values.update(overrides)
    return TrainConfig(**values).validate()

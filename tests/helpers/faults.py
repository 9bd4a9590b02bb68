"""Faults injected into the training step."""


def poison_critic_loss(monkeypatch, at_step):
    """Make CBiGAN.train_batch report a NaN critic loss once the model's step counter reaches at_step (the
    update itself runs as usual): what the NaN guard must catch."""
    from models.cbigan import CBiGAN
    original = CBiGAN.train_batch

    def poisoned(self, x):
        kind, results = original(self, x)
        if int(self.step.numpy()) == at_step:
            results = dict(results, critic_loss=float("nan"))
        return kind, results

    monkeypatch.setattr(CBiGAN, "train_batch", poisoned)

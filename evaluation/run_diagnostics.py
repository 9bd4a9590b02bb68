"""diagnostics.json of one evaluation (the checks of evaluation/diagnostics.py), collected chunk by chunk while
the test set is scored: the mean-image baseline's distances, aggregated as the model's image score, and the good
test images' reconstructions for the reconstruction specificity."""
import dataclasses

import numpy as np

from data.streams import load_train_images
from evaluation import diagnostics as D
from models import image_scores as IS


def mean_training_image(spec, files, chunk=64):
    """The mean-image baseline's template (evaluation/diagnostics.py), decoded chunk by chunk; None without
    training images."""
    if not files.train_paths:
        return None
    template = D.MeanTemplate(spec.patch_size)
    for start in range(0, len(files.train_paths), chunk):
        part = dataclasses.replace(files, train_paths=files.train_paths[start:start + chunk])
        template.add(load_train_images(spec, part, verbose=False))
    return template


class RunDiagnostics:
    """Collects the diagnostics of one run's test set (run: evaluation.run_inputs.RunInputs); the mean training
    image is computed on creation."""

    def __init__(self, run):
        self.size = run.spec.image_size
        self.image_score, self.topk, self.sigma = run.image_score, run.topk, run.sigma
        self.template = mean_training_image(run.spec, run.files)
        self.template_distances = []
        self.good = D.GoodReconstructions(self.size)

    @property
    def wants_reconstructions(self):
        """Whether the next chunk's reconstructions are needed (Scorer.score_images' keep_reconstructions)."""
        return self.good.wants_more

    def add(self, chunk, out):
        """chunk: a test chunk (data.streams.iter_test_chunks); out: its Scorer.score_images output."""
        if self.template is not None:  # the mean-image baseline, aggregated as the model's score
            self.template_distances.append(
                IS.map_scores(self.template.distance_maps(chunk["image"], self.size), self.image_score, self.topk,
                              self.sigma) if IS.is_map_score(self.image_score)
                else self.template.distances(chunk["image"]))
        if self.good.wants_more:
            self.good.add(chunk, out)

    def result(self, labels):
        """diagnostics.json's content (labels: the test set's, in scoring order); the collected images are
        released."""
        result = {"template_auroc": (D.template_auroc(labels, np.concatenate(self.template_distances))
                                     if self.template is not None else None),
                  "template_image_score": IS.name(self.image_score, self.topk or IS.DEFAULT_TOPK_PERCENT),
                  "reconstruction_specificity": self.good.specificity()}
        self.good = None
        return result

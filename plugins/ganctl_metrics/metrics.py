"""The metric plugins: each wraps a function of :mod:`.stats` in the ``api.Metric`` contract."""

from __future__ import annotations

from typing import Literal

from ganctl import api

from . import stats


class FID(api.Metric):
    """Fréchet distance between Gaussian fits of real and generated features (lower is better)."""

    distance = True
    default = True  # computed by ganctl evaluate when no metric is named
    checks_exports = True  # and by the quality check of quantised exports, which limits its increase

    class Params(api.Params):
        eps: float = api.Field(1e-6, gt=0, description="Added to the covariances' diagonals only if the product is singular.")

    def compute(self, real, fake, *, fake_labels, seed):
        mu1, sigma1 = stats.feature_statistics(real.features)
        mu2, sigma2 = stats.feature_statistics(fake.features)
        details = stats.frechet_details(mu1, sigma1, mu2, sigma2, eps=self.params.eps)
        return {"fid": details["fid"], "mean_term": details["mean_term"], "trace_term": details["trace_term"],
                "complex_residue": details["complex_residue"], "eps": details["eps"]}


class KID(api.Metric):
    """Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel (lower is better)."""

    distance = True
    default = True

    class Params(api.Params):
        subsets: int = api.Field(100, ge=1, description="How many random subsets to average over.")
        subset_size: int = api.Field(1000, ge=2, description="Images per subset (capped at n).")

    def params_for(self, n):
        return self.params.model_copy(update={"subset_size": min(self.params.subset_size, n)})

    def compute(self, real, fake, *, fake_labels, seed):
        used = self.params_for(min(len(real.features), len(fake.features)))
        mean, std = stats.kid(real.features, fake.features, subsets=used.subsets, subset_size=used.subset_size,
                              seed=seed)
        return {"kid": mean, "kid_std": std}


class PRDC(api.Metric):
    """Precision, recall, density and coverage from k-nearest-neighbour balls (Naeem et al. 2020)."""

    lower_is_better = False
    default = True

    class Params(api.Params):
        k: int = api.Field(5, ge=1, description="Nearest neighbours defining each real image's ball.")

    def compute(self, real, fake, *, fake_labels, seed):
        found = stats.prdc(real.features, fake.features, k=self.params.k)
        return {"coverage": found["coverage"], "precision": found["precision"], "recall": found["recall"],
                "density": found["density"]}


class InceptionScore(api.Metric):
    """Inception Score on a classifier's probabilities of the generated images (higher is better)."""

    needs_probabilities = True
    lower_is_better = False

    class Params(api.Params):
        splits: int = api.Field(10, ge=1, description="Split the generated images into this many groups.")

    def compute(self, real, fake, *, fake_labels, seed):
        mean, std = stats.inception_score(fake.probabilities, splits=self.params.splits)
        real_mean, _ = stats.inception_score(real.probabilities, splits=self.params.splits)
        return {"inception_score": mean, "inception_score_std": std, "inception_score_real": real_mean}


class ClassAccuracy(api.Metric):
    """How often a classifier assigns a conditional generator's image to the class it was asked for."""

    needs_probabilities = True
    needs_labels = True
    lower_is_better = False

    class Params(api.Params):
        pass

    def compute(self, real, fake, *, fake_labels, seed):
        found = stats.class_accuracy(fake.probabilities, fake_labels)
        values = {"class_accuracy": found["accuracy"]}
        values.update({f"class_{i}": v for i, v in enumerate(found["per_class"])})
        return values


class C2ST(api.Metric):
    """Classifier two-sample test: how well a classifier tells real from generated (0.5 AUC: not at all)."""

    default = True
    checks_exports = True

    class Params(api.Params):
        classifier: Literal["logistic", "mlp"] = api.Field("logistic", description="The real-vs-generated classifier.")

    def compute(self, real, fake, *, fake_labels, seed):
        found = stats.c2st(real.features, fake.features, classifier=self.params.classifier, seed=seed)
        keys = ("roc_auc", "accuracy", "precision", "recall", "f1", "n_train", "n_test")
        return {**{k: float(found[k]) for k in keys}, "converged": float(bool(found.get("converged", True)))}

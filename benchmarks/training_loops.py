"""Benchmark: one epoch of the BiLSTM tagger on the WNUT-16 tweets, two ways.

* the per-example loop (``model.fit`` on one tweet at a time,
  :func:`rnncourse.training.fit_per_example`), timed on a subset of the training tweets and
  extrapolated linearly to all of them;
* ``fit(batch_size=32, shuffle=True)`` (:func:`rnncourse.training.fit_minibatches`) on all.

Each measurement times a second epoch (one-off graph tracing excluded); the two paths are
interleaved ``--repeats`` times and the medians reported, so a burst of load on a shared
machine hits both. The notebook quotes this script's output as a benchmark figure and never
asserts wall-clock time.

    python benchmarks/training_loops.py [--subset 100] [--units 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics

from rnncourse import config, data, embeddings, glove, models, text, training
from rnncourse.chapters import ch06_training as ch06


def per_epoch_seconds(history: training.LoopHistory, examples: int) -> float:
    """Seconds one epoch over ``examples`` would take, from the last epoch measured."""
    seen = int(history.step_sizes[-history.steps_per_epoch:].sum())
    return float(history.epoch_seconds[-1]) * examples / seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=100,
                        help="tweets the per-example loop runs on (then extrapolated)")
    parser.add_argument("--units", type=int, default=64, help="LSTM units per direction")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats")
    args = parser.parse_args()

    setup = ch06.settings()
    config.set_seed(config.seed(0))
    tokens, tags = data.load_tweet_ner()  # the chapter's tweets and training split
    tokens, tags = tokens[:setup.sizes.tagger_tweets], tags[:setup.sizes.tagger_tweets]
    train, _ = text.split_indices(len(tokens), setup.recipe.validation_fraction,
                                  seed=config.seed(0))
    vocab = text.Vocabulary.from_tokens([tokens[i] for i in train])
    vectors = glove.read_glove(data.glove_path(setup.recipe.glove_dim),
                               vocabulary={t.lower() for tweet in tokens for t in tweet})
    matrix, _ = embeddings.embedding_matrix(vocab, vectors, seed=config.seed(0))
    x, y = text.encode_tagging(tokens, tags, vocab, text.tag_vocabulary(tags))
    x, y, tag_count = x[train], y[train], len(text.tag_vocabulary(tags))
    n, batch_size = len(x), setup.recipe.batch_size

    def model():
        tagger = models.sequence_tagger(len(vocab), tag_count,
                                        units=args.units, embeddings=matrix,
                                        seed=config.seed(1))
        tagger.compile(optimizer=training.optimizer(setup.recipe.optimizer,
                                                    setup.recipe.learning_rate),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return tagger

    loop_s, batch_s = [], []
    for _ in range(args.repeats):
        loop = training.fit_per_example(model(), x[:args.subset], y[:args.subset], epochs=2)
        loop_s.append(per_epoch_seconds(loop, n))
        batches = training.fit_minibatches(model(), x, y, epochs=2, batch_size=batch_size)
        batch_s.append(per_epoch_seconds(batches, n))
    loop_epoch, batch_epoch = statistics.median(loop_s), statistics.median(batch_s)

    print(f"BiLSTM({args.units}) tagger, {n} training tweets x {x.shape[1]} steps, "
          f"vocabulary {len(vocab)}, {os.cpu_count()} CPUs, "
          f"median of {args.repeats} interleaved repeats")
    print(f"{'path':<48}{'s / epoch':>12}")
    print(f"{'fit() per example (extrapolated from ' + str(args.subset) + ')':<48}"
          f"{loop_epoch:>12.2f}")
    print(f"{'fit(batch_size=' + str(batch_size) + ', shuffle=True)':<48}{batch_epoch:>12.2f}")
    print(f"ratio (per-example / mini-batch): {loop_epoch / batch_epoch:.1f}x")


if __name__ == "__main__":
    main()

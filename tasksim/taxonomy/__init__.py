"""The taxonomy stage: ground truth, trees, protocols, scores with their uncertainty, summaries
(docs/data-layout.md, docs/methods.md).

Modules: :mod:`.protocols` (which protocol a run defines, the reference tree), :mod:`.scorer`
(scores of one matrix, bootstrap intervals, permutation p-values), :mod:`.bootstrap` (rebuilding a
method's matrix on resampled images, as the method table declares), :mod:`.summary` (the summary
table, its Markdown, the report's front page), :mod:`.files` (ground-truth CSVs, tree JSON) and
:mod:`.stage` (the path-in/path-out steps the rule scripts call), :mod:`.figures` (the stage's
figures). The science lives in
:mod:`tasksim.taxonomy.trees`, :mod:`tasksim.taxonomy.scoring`, :mod:`tasksim.taxonomy.uncertainty` and
:mod:`tasksim.taxonomy.groundtruth`.

Protocols (keys of ``scores`` in the JSON):

* ``attribution`` (Song et al.): ``p@K`` / ``r@K`` for K = 1..19, 18 targets, top-5 of
  ``affinity_16k``; ``mean_p@k`` = mean of P@K over K.
* ``dds_affinity`` (unsuffixed affinities) and ``dds_wins_vs_pixels`` (``wins_vs_pixels_16k``):
  mean over the 17 targets of the per-target Spearman.
* ``tree_cophenetic`` / ``tree_adjusted_rand``: agreement with the reference tree.

A protocol whose tasks are not all among the models (task subsets, user models) is recorded as
``{"skipped": reason}`` instead of failing. With a Mini-Taskonomy ground truth (a measured source x
target CSV) the same protocols run on the tasks that ground truth defines.
"""

from tasksim.similarity.files import SimilarityFile, read_similarity
from tasksim.taxonomy.bootstrap import bootstrap_source
from tasksim.taxonomy.files import linkage_from_json, read_groundtruth_csv, tree_json
from tasksim.taxonomy.protocols import (
    GROUNDTRUTH_LABELS,
    HEADLINE_SCORES,
    Protocols,
    article,
    define_protocols,
    groundtruth_label,
    reference_tree,
)
from tasksim.taxonomy.scorer import FastScorer, score_analysis, score_matrix
from tasksim.taxonomy.summary import (
    FRONT_PAGE_SCORES,
    SCORE_LABELS,
    describe_score,
    headline_rst,
    score_description,
    summary_markdown,
    summary_table,
)

__all__ = [
    "FRONT_PAGE_SCORES", "GROUNDTRUTH_LABELS", "HEADLINE_SCORES", "SCORE_LABELS", "FastScorer",
    "Protocols", "SimilarityFile", "article", "bootstrap_source", "define_protocols",
    "describe_score", "groundtruth_label", "headline_rst", "linkage_from_json",
    "read_groundtruth_csv", "read_similarity", "reference_tree", "score_analysis",
    "score_description", "score_matrix", "summary_markdown", "summary_table", "tree_json",
]

"""What the tables, figures and report front page say: the ground truth named, counts that match
the run, p-values at the permutation test's resolution."""
import numpy as np
import pandas as pd
import pytest

from tasksim import taxonomy as tx
from tasksim.taxonomy.uncertainty import format_p_value


def test_p_values_are_printed_at_the_resolution_of_the_test():
    assert format_p_value(1 / 1001, 1000) == "p < 0.001"
    assert format_p_value(1 / 201, 200) == "p < 0.005"
    assert format_p_value(7 / 201, 200) == "p = 0.035"
    assert format_p_value(0.5, 1000) == "p = 0.50"
    assert format_p_value(None, 1000) == "" and format_p_value(0.2, 0) == ""


def _mini_run(n_tasks=6, kind="minitaskonomy"):
    rng = np.random.default_rng(0)
    tasks = [f"t{i}" for i in range(n_tasks)]
    a = rng.random((n_tasks, n_tasks))
    gt = pd.DataFrame(a + a.T, index=tasks, columns=tasks)
    sim = gt + 0.05 * rng.random((n_tasks, n_tasks))  # tracks the ground truth
    sim = (sim + sim.T) / 2
    prot = tx.define_protocols(tasks, {"attribution": gt, "dds_affinity": gt, "dds_wins_vs_pixels": None},
                               kind=kind, n_clusters=2)
    tree = {"method": "single", "distance": "rows_euclidean", "optimal_ordering": True}
    res = tx.score_analysis(sim, prot, tree, n_images=10, similarity_fn=None, n_bootstrap=0,
                            n_permutations=99, n_clusters=2)
    res.update(method="rsa", layer="encoder_output", models=tasks, n_images=10, groundtruth=kind)
    return res


def test_summary_names_the_runs_ground_truth_and_counts():
    res = _mini_run(6)
    table = tx.summary_table([res])
    desc = dict(zip(table["score"], table["description"]))
    assert desc["dds_affinity"] == "mean per-target Spearman vs the measured Mini-Taskonomy affinity (6 tasks)"
    assert desc["mean_p@k"] == "mean of P@K over K = 1..5 (vs the measured Mini-Taskonomy affinity)"
    assert "top-4 sources of the measured Mini-Taskonomy affinity (6 targets)" in desc["p@1"]
    assert "Taskonomy" not in " ".join(d for d in desc.values() if "Mini" not in d)
    # the chance level is the mean score of the permuted matrices: far below a matrix that tracks the truth
    row = table[table["score"] == "dds_affinity"].iloc[0]
    assert row["estimate"] > 0.5 and abs(row["chance"]) < row["estimate"] - 0.3


def test_taskonomy_kind_names_the_taskonomy_files():
    assert tx.groundtruth_label("taskonomy", "attribution") == "Taskonomy all_affinities_16k"
    assert tx.groundtruth_label("taskonomy", "dds_wins_vs_pixels") == "Taskonomy wins_vs_pixels_16k"
    d = tx.score_description("dds_affinity", {"dds_affinity": {"tasks": list("abcdefghijklmnopq"),
                                                               "groundtruth": "Taskonomy all_affinities"}})
    assert d == "mean per-target Spearman vs Taskonomy all_affinities (17 tasks)"


def test_front_page_says_what_was_run_and_what_came_out():
    runs = [_mini_run(6)]
    other = _mini_run(6)
    other["layer"] = "block3"
    for v in other["scores"].values():
        v["estimate"] = v["estimate"] - 0.2 if v["estimate"] is not None else None
    runs.append(other)
    table = tx.summary_table(runs)
    text = tx.headline_rst(table, runs, "config demo.yaml", {"name": "mini_scenes", "source": "generated"})
    assert "measured Mini-Taskonomy affinity" in text and "``mini_scenes``: 10 images" in text
    best = text.index("**rsa / encoder_output**")
    assert best < text.index("**rsa / block3**")  # ranked by the headline score
    assert "p < 0.01" in text and "chance" in text and "dds_correlations.png" in text
    assert "{{" not in text and "{%" not in text  # the report renders it as a Jinja template


@pytest.mark.parametrize("name", ["class_object"])
def test_object_class_label_has_no_class_count(name):
    from tasksim.tasks import display_name

    assert display_name(name) == "Object Class."

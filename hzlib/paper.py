"""Numbers reported by the paper (Luo 2024), each tagged with where it appears.

Only what the paper states goes here. Nothing in this module is a result of ours; chapters print
these beside the values computed at run time.
"""
from __future__ import annotations

CITATION = (
    "Luo Z. Exploration of the cultural attributes of Chinese character sculpture using machine "
    "learning technology. Journal of Autonomous Intelligence, 2024."
)

# Table 1: the 10 cultural-attribute classes of the paper's 1,850 sculpture images, in the paper's order.
# The counts are the paper's; the descriptive columns of each row (region, period, art movement,
# cultural aspect) are given by hzlib.corpus.classes, which states that they are our reading.
TABLE1_COUNTS: tuple[int, ...] = (302, 204, 153, 128, 189, 257, 172, 196, 138, 111)
TABLE1_TOTAL = 1850

# Abstract / Table 3 headline claims for CLIP.
HEADLINE = {
    "precision": 0.98, "recall": 0.98, "f1": 0.98, "accuracy": 0.98,  # mean over 10 attributes
    "auc": 0.98, "auc_gain_over_m3": 0.054,
    "rmse": 0.034, "mae": 0.025, "analysis_time_ms": 182,
}
# Where each headline number is stated: the abstract states the AUC gain over M3, RMSE, MAE and the
# analysis time; the 0.98 means are the "Abstract / Table 3" claims above.
HEADLINE_WHERE = {
    "precision": "Abstract / Table 3", "recall": "Abstract / Table 3", "f1": "Abstract / Table 3",
    "accuracy": "Abstract / Table 3", "auc": "Abstract / Table 3", "auc_gain_over_m3": "Abstract",
    "rmse": "Abstract", "mae": "Abstract", "analysis_time_ms": "Abstract",
}

# Table 2: texts mapped into the image embedding space. Only its columns are used here: its five rows
# describe the paper's private sculptures, so chapter 4 fills the same columns for texts of our corpus.
TABLE2_COLUMNS: tuple[str, ...] = ("text", "2-D position of the embedding", "similarity score",
                                   "vocabulary size", "text length")

"""Numbers reported by the paper (Luo 2024), each tagged with where it appears.

Only what the paper states goes here. Nothing in this module is a result of ours; chapters print
these beside the values computed at run time.
"""
from __future__ import annotations

from dataclasses import dataclass

CITATION = (
    "Luo Z. Exploration of the cultural attributes of Chinese character sculpture using machine "
    "learning technology. Journal of Autonomous Intelligence, 2024."
)

# Table 1 (section 3): the paper's 10 rows of sculpture images, word for word, in its order. Each row
# is one cultural-attribute class of the study; hzlib.corpus.classes turns each into a distribution
# over what a sculpture looks like (that part is ours).
@dataclass(frozen=True)
class Table1Row:
    region: str
    period: str
    movement: str
    aspect: str
    count: int


TABLE1: tuple[Table1Row, ...] = (
    Table1Row("China", "Ancient Times", "Traditional Culture Revival", "Historical Tradition", 302),
    Table1Row("China", "Modern Times", "Abstract Art", "Contemporary Innovation", 204),
    Table1Row("Taiwan", "Contemporary Times", "Contemporary Art", "Cultural Diversity", 153),
    Table1Row("Hong Kong", "End of 20th Century", "Experimental Art", "Urban Culture", 128),
    Table1Row("Japan", "Middle Ages", "Traditional Japanese Art", "Traditional Culture", 189),
    Table1Row("United States", "Contemporary Times", "Digital Art", "Fusion of Technology and Art", 257),
    Table1Row("France", "Renaissance", "Modernism", "Art and Philosophy Integration", 172),
    Table1Row("South Korea", "Contemporary Times", "Korean Traditional Sculpture", "Contemporary Aesthetics", 196),
    Table1Row("Singapore", "Contemporary Times", "Avant-garde Art", "Cross-cultural Communication", 138),
    Table1Row("Australia", "Contemporary Times", "Indigenous Art", "Environmental Protection", 111),
)
TABLE1_WHERE = "Section 3, Table 1"
TABLE1_COUNTS: tuple[int, ...] = tuple(r.count for r in TABLE1)
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

# Section 4 (Figures 7-8, Table 3): the models the paper compares, in its own words, by our key.
# The paper cites no source for "M3"; chapter 8's card for `m3p` says how we read it.
COMPARATORS = {"clip": "CLIP", "m3p": "M3", "dan": "Dual-Attention Network", "item": "Image-Text Embedding Model",
               "vilbert": "ViLBERT"}

# What the paper states about its evaluation, tagged by where it says it. Values other than CLIP's
# headline numbers (HEADLINE) are not stated as numbers in the text we hold, so none are recorded.
EVALUATION_CLAIMS: tuple[tuple[str, str], ...] = (
    ("Section 4", "Leave-one-out cross-validation over the 1,850 images; the splits and what the model saw are not stated."),
    ("Figure 7", "CLIP's precision, recall, F1 and accuracy average 0.98 over the 10 attributes, above all four comparators."),
    ("Figure 8 / abstract", "CLIP's mean AUC (0.98) is 5.4% above M3's; whether relative or in points is not said."),
    ("Table 3 / abstract", "CLIP: RMSE 0.034, MAE 0.025 (the quantities they are taken between are not defined) "
                           "and 182 ms analysis time (hardware and what is timed are not stated)."),
    ("Figures 7-8", "The Image-Text Embedding Model is second-best on precision, recall, F1 and accuracy, yet "
                    "second-worst on AUC, and the text also calls M3 the best-performing comparator."),
)

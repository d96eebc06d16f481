"""Numbers reported by the paper (Luo 2024), each tagged with where it appears.

Only what the paper states goes here, each number typed once: Table 1 (section 3), Table 2 (section
3), the hyper-parameters of section 4 and Figure 3, Figure 5 (section 5), and every result of section
6 (Figures 7-8, Table 3) in :data:`RESULTS`; the other names are views of these. The paper's sections:
1 introduction, 2 related work, 3 image and text data (Eq 1-4, Tables 1-2, Figures 1-2), 4 CLIP
training (Eq 5-7, Figure 3), 5 Grad-CAM and K-means (Eq 8-11, Figures 4-6), 6 evaluation (Eq 12-17,
Figures 7-8, Table 3), 7 conclusions. Nothing in this module is a result of ours; chapters print these
beside the values computed at run time.
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

# Table 2 (section 3): "text mapping results", five texts with their columns, as printed. The paper
# heads the text column "Chinese text" but prints English; hzlib.text.TABLE2_ZH holds our Chinese
# translation. Its texts do not describe particular sculptures of ours, so chapter 4 computes the same
# columns for them on our corpus.
@dataclass(frozen=True)
class Table2Row:
    text_id: str
    text: str  # as printed (in English)
    position: tuple[float, float]  # "word embedding visualization location"
    similarity: float  # "image embedding similarity score"
    vocabulary: int  # "equivalent vocabulary size"
    length: int  # "text length" (characters)


TABLE2: tuple[Table2Row, ...] = (
    Table2Row("001", "Classical style sculpture", (2.5, 3.8), 0.89, 300, 20),
    Table2Row("002", "Modern innovative design Chinese sculpture", (-1.2, 4.5), 0.75, 400, 25),
    Table2Row("003", "Traditional cultural expression", (0.9, 1.2), 0.92, 250, 15),
    Table2Row("004", "Abstract artwork", (-3.0, -2.5), 0.81, 350, 18),
    Table2Row("005", "Unique Creation of contemporary artists", (4.2, 0.5), 0.88, 280, 22),
)
TABLE2_WHERE = "Section 3, Table 2"
TABLE2_COLUMNS: tuple[str, ...] = ("Text ID", "Chinese text", "Word embedding visualization location",
                                   "Image embedding similarity score", "Equivalent vocabulary size", "Text length")


# Section 4 and Figure 3: the model and its training, as stated. profiles/models/paper.yml writes the
# geometry in our geometry format (and says what cannot be built).
@dataclass(frozen=True)
class Stated:
    value: float | int
    where: str
    what: str


_S4 = "Section 4"
HYPERPARAMETERS: dict[str, Stated] = {
    "text_layers_before": Stated(15, _S4, "text encoder layers before the paper expanded it"),
    "text_layers": Stated(30, _S4, "text encoder layers"),
    "text_heads": Stated(76, _S4, "self-attention heads per text encoder layer"),
    "text_width": Stated(1280, _S4, "hidden size of the text encoder"),
    "image_heads": Stated(40, _S4, "self-attention heads per image encoder (ViT) layer"),
    "image_width": Stated(2560, _S4, "hidden size of the image encoder"),
    "image_size": Stated(1000, _S4, "input resolution, 1000 x 1000 pixels"),
    "images_per_second": Stated(20, _S4, "images processed per second"),
    "fusion_width": Stated(512, _S4, "neurons of the fusion layer that combines text and image features"),
    "output_width": Stated(200, _S4, "neurons of the output layer that gives the categorisation"),
    "learning_rate": Stated(0.0005, _S4, "learning rate"),
    "batch_size": Stated(512, _S4, "batch size"),
    "iterations": Stated(100, "Section 4, Figure 3", "iterations on the loss curves (1-100)"),
    "best_setting": Stated(12, "Section 4, Figure 3", "the parameter setting that performs best and is used"),
}
# Not stated: the image encoder's depth and patch size, the context length, the temperature, the
# optimiser, the splits, how many settings Figure 3 draws and what they vary.

# Figure 5 (section 5): K-means on the features of the sculpture of 真.
FIGURE5 = {"clusters": 3, "iterations": 6}
FIGURE5_WHERE = "Section 5, Figure 5"

# Section 6: the five models the paper compares, in its own words, by our key (and in the order in
# which its text lists them). The paper cites no source for "M3"; chapter 8's card for `m3p` says how
# we read it.
COMPARATORS = {"clip": "CLIP", "m3p": "M3", "dan": "Dual-Attention Network", "item": "Image-Text Embedding Model",
               "vilbert": "ViLBERT"}
MODELS: tuple[str, ...] = tuple(COMPARATORS)
N_ATTRIBUTES = 10  # "Chinese character sculptures with 10 different cultural attributes" (section 6)


@dataclass(frozen=True)
class Result:
    """One number the paper states about a model's results, and where."""
    model: str  # key of COMPARATORS
    metric: str  # precision, recall, f1, accuracy, auc (means over the 10 attributes), rmse, mae, time_ms
    value: float
    where: str


# Where each result is stated. The CLIP means of Figure 7 and its AUC are also in the introduction;
# RMSE, MAE and time also in the abstract and the introduction. The four comparators' Figure 7 means
# are given as "0.92, 0.92, 0.92, 0.91; 0.93, ...; ...; ..., respectively" right after the text lists
# "M3, Dual-Attention Network, Image-Text Embedding Model, and ViLBERT": we assign them in that order.
FIG7 = "Section 6, text on Figure 7"
FIG7_CLIP = "Introduction; Section 6, text on Figure 7"
FIG8 = "Section 6, text on Figure 8"
FIG8_CLIP = "Introduction; Section 6, text on Figure 8"
TAB3 = "Section 6, Table 3"
TAB3_CLIP = "Abstract; Introduction; Section 6, Table 3"
METRICS: tuple[str, ...] = ("precision", "recall", "f1", "accuracy", "auc", "rmse", "mae", "time_ms")


def _fig7(model: str, where: str, p: float, r: float, f1: float, acc: float) -> tuple[Result, ...]:
    return tuple(Result(model, m, v, where) for m, v in zip(METRICS[:4], (p, r, f1, acc)))


def _tab3(model: str, where: str, rmse: float, mae: float, ms: float) -> tuple[Result, ...]:
    return tuple(Result(model, m, v, where) for m, v in zip(("rmse", "mae", "time_ms"), (rmse, mae, ms)))


RESULTS: tuple[Result, ...] = (
    # Figure 7: mean precision, recall, F1 and accuracy over the 10 attributes
    *_fig7("clip", FIG7_CLIP, 0.98, 0.98, 0.98, 0.98),
    *_fig7("m3p", FIG7, 0.92, 0.92, 0.92, 0.91),
    *_fig7("dan", FIG7, 0.93, 0.92, 0.92, 0.90),
    *_fig7("item", FIG7, 0.95, 0.93, 0.94, 0.94),
    *_fig7("vilbert", FIG7, 0.92, 0.88, 0.89, 0.93),
    # Figure 8: mean AUC over the 10 attributes
    Result("m3p", "auc", 0.93, FIG8), Result("dan", "auc", 0.92, FIG8), Result("item", "auc", 0.91, FIG8),
    Result("vilbert", "auc", 0.87, FIG8), Result("clip", "auc", 0.98, FIG8_CLIP),
    # Table 3: RMSE, MAE and analysis time (ms)
    *_tab3("clip", TAB3_CLIP, 0.034, 0.025, 182),
    *_tab3("m3p", TAB3, 0.042, 0.032, 231),
    *_tab3("dan", TAB3, 0.039, 0.028, 573),
    *_tab3("item", TAB3, 0.036, 0.026, 459),
    *_tab3("vilbert", TAB3, 0.038, 0.030, 864),
)


def result(model: str, metric: str) -> Result:
    """The paper's stated value of ``metric`` for ``model`` (KeyError if it states none)."""
    for r in RESULTS:
        if r.model == model and r.metric == metric:
            return r
    raise KeyError(f"the paper states no {metric} for {model!r}")


# "approximately 5.4%" higher mean AUC than M3 (abstract, introduction, section 6). The values of
# Figure 8 give (0.98 - 0.93) / 0.93 = 5.38%: a relative gain, not 5.4 points.
AUC_GAIN_OVER_M3 = 0.054
AUC_GAIN_WHERE = "Abstract; Introduction; Section 6, text on Figure 8"

# CLIP's headline numbers, as the chapters use them (views of RESULTS).
_CLIP_METRICS = ("precision", "recall", "f1", "accuracy", "auc", "rmse", "mae")
HEADLINE = {**{m: result("clip", m).value for m in _CLIP_METRICS},
            "auc_gain_over_m3": AUC_GAIN_OVER_M3, "analysis_time_ms": result("clip", "time_ms").value}
HEADLINE_WHERE = {**{m: result("clip", m).where for m in _CLIP_METRICS},
                  "auc_gain_over_m3": AUC_GAIN_WHERE, "analysis_time_ms": result("clip", "time_ms").where}


def _best_comparator(metric: str) -> str:
    vals = {r.model: r.value for r in RESULTS if r.metric == metric and r.model != "clip"}
    return COMPARATORS[(min if metric in ("rmse", "mae", "time_ms") else max)(vals, key=vals.get)]


# What the paper states about its evaluation beyond the numbers, tagged by where it says it.
EVALUATION_CLAIMS: tuple[tuple[str, str], ...] = (
    ("Section 6", "Leave-one-out cross-validation: in each round one sample is the validation set and the "
                  "remaining samples train the model, until every sample has been the validation set. What "
                  "'the model' covers (the CLIP backbone or a classifier on its features) and how the "
                  "comparators were trained are not stated."),
    (FIG7, f"CLIP's mean precision, recall, F1 and accuracy over the {N_ATTRIBUTES} attributes are "
           f"{HEADLINE['precision']:g}, above all four comparators."),
    (AUC_GAIN_WHERE, f"CLIP's mean AUC is about {AUC_GAIN_OVER_M3:.1%} higher than M3's, the best "
                     "comparator by AUC: a relative gain, by the AUCs of Figure 8."),
    (TAB3, "CLIP has the lowest RMSE and MAE and the shortest analysis time. The quantities RMSE and MAE "
           "are taken between are not defined; the hardware and what is timed are not stated."),
    ("Section 6, Figures 7-8 and Table 3", f"By precision, recall, F1 and accuracy and by RMSE and MAE the best "
                                           f"comparator is the {_best_comparator('f1')}; by AUC it is "
                                           f"{_best_comparator('auc')}, which the text calls the best-performing."),
)

"""Judging a corpus by more than correctness: quality signals per subset (computed at export, kept in
cotforge_stats.json, shown on the card) and the filters on them (`cotforge export` and `train`)."""

# Two rationales are near-duplicates when the estimated Jaccard similarity of their word 3-gram sets is at least this.
THRESHOLD = 0.8

# Bounded work for any text (a pulled rationale may be megabytes long): near-duplicates and distinct-n read at most
# the first SIGNAL_CHARS characters of a rationale (their cost is linear in it; this is max_answer_chars' default,
# so a default build's answers are read whole), and pairwise similarity, quadratic in length, compares at most the
# first SIMILARITY_CHARS of each answer (16 answers of this length: under a second per question). The texts cut
# are counted in the signals.
SIGNAL_CHARS = 100_000
SIMILARITY_CHARS = 10_000

# The filters' help, shared by `cotforge export` and TrainConfig (so `train` and `sweep`): declared once, here, where
# importing it loads nothing heavy.
MIN_PASS_RATE_HELP = (
    "Keep questions whose teacher pass rate (correct answers / answers in the subset, rejections counted; 0 or 1 "
    "with one answer) is at least this"
)
MAX_PASS_RATE_HELP = "Keep questions whose teacher pass rate is at most this (drop the ones every sample gets right)"
DEDUP_HELP = f"Drop rationales that are near-duplicates (MinHash, Jaccard >= {THRESHOLD}) of an earlier question's"
MIN_JUDGE_HELP = (
    "Keep records the judge scored at least this on a rubric, as rubric:score (e.g. faithful:4; run `cotforge judge` "
    "first); repeatable"
)
SELECT_HELP = (
    "Keep this fraction of each subset's records: rsr:0.5, the half with the lowest Rank-Surprisal Ratio under "
    "the student (scored first with `cotforge score`); surprisal:0.5 or rank:0.5, the lowest of either baseline; "
    "random:0.5[:SEED], a random half of the same size"
)

"""How well a corpus suits a student before training it (`cotforge score`): the Rank-Surprisal Ratio of every
record under the student (cotforge.quality.rsr), kept per record beside the build and per subset in its statistics.

Not named `score`: a subpackage's name becomes an attribute of `cotforge` once imported, and would hide the API
function `cotforge.score`."""

from cotforge.suitability.run import ScoreCallback, ScoreProgress, ScoreReport, score_build
from cotforge.train.scorer import weights_digest

__all__ = ["ScoreCallback", "ScoreProgress", "ScoreReport", "score_build", "weights_digest"]

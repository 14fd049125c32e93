"""An LLM judge of a build's accepted records: typed rubrics, verdicts stored once, scores beside the build."""

from cotforge.judging.live import LiveJudge, live_judge
from cotforge.judging.rubrics import BUILTIN, LevelRubric, Rubric, resolve_rubric
from cotforge.judging.run import JudgeReport, judge_build, judge_spec, refresh_judgements

__all__ = [
    "BUILTIN",
    "JudgeReport",
    "LevelRubric",
    "LiveJudge",
    "Rubric",
    "judge_build",
    "judge_spec",
    "live_judge",
    "refresh_judgements",
    "resolve_rubric",
]

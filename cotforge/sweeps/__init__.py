"""`cotforge sweep`: which granularity (or format, or teacher) suits this student?

settings.py   what decides a sweep's numbers (SweepSettings, with the trainer's groups every cell shares)
planning.py   the arms, the problems every arm trains on, the held-out questions (SweepPlan, Arm, Cell)
arms.py       arms named with --arm: prompted levels, native traces, condensed levels, baselines, mixtures
holdout.py    the hold-out drawn by families and groups of near-variant questions
cells.py      running cells, each recorded as a CellResult in its cell.json, a round at a time (run_cells)
executors.py  where a round's cells run: in this process, N at once on this machine (--jobs), or on Ray (--ray)
statistics.py verdict: a bootstrap over question groups, the pooled run-to-run term, the model confidence set
power.py      the power to name the best arm alone (dry run and report)
adaptive.py   --adaptive: rounds of seeds, each only for the arms that could still be the best
predict.py    --predict, --prune K: every arm scored under every student before training (cotforge.suitability)
agreement.py  those scores beside the measured accuracies: Spearman's rho per student and score
results.py    ArmResult, StudentVerdict and SweepReport
report.py     the merged report, its Markdown, the recommendation, the card section
plot.py       the figure
layout.py     the sweep folder's files
"""

from cotforge.sweeps.cells import CellJob, CellResult, CellsFailed, run_cells, run_sweep
from cotforge.sweeps.executors import CellFailure, Executor, LocalPool, RayCluster, Serial, executor_for
from cotforge.sweeps.planning import Arm, Cell, SweepPlan, choose_arms, plan_sweep
from cotforge.sweeps.report import build_report, push_to_card
from cotforge.sweeps.results import ArmResult, SweepReport
from cotforge.sweeps.settings import SweepError, SweepSettings
from cotforge.sweeps.statistics import Verdict, verdict

__all__ = [
    "Arm",
    "ArmResult",
    "Cell",
    "CellFailure",
    "CellJob",
    "CellResult",
    "CellsFailed",
    "Executor",
    "LocalPool",
    "RayCluster",
    "Serial",
    "SweepError",
    "SweepPlan",
    "SweepReport",
    "SweepSettings",
    "Verdict",
    "build_report",
    "choose_arms",
    "executor_for",
    "plan_sweep",
    "push_to_card",
    "run_cells",
    "run_sweep",
    "verdict",
]

"""The sweep's figure: accuracy against granularity, one line per student (the paper's figure), and rationale length
per level."""

from __future__ import annotations

import itertools

from cotforge.sweeps.planning import student_label
from cotforge.sweeps.results import SweepReport

_DASHES = ["--", ":", "-.", (0, (6, 2, 1, 2, 1, 2))]


def plot_png(report: SweepReport) -> bytes | None:
    """Accuracy against granularity, one line per student (the paper's figure), and rationale length per level."""
    if report.settings.vary != "granularity":
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 5.5), dpi=100)
    ringed = False
    for student in report.settings.students:
        points = sorted((a.level, a) for a in report.arms if a.student == student and a.level is not None)
        color = None  # arms off the level axis take the student's colour, or their own when it has no level
        if points:
            xs = [level for level, _ in points]
            ys = [a.accuracy for _, a in points]
            errors = [[a.accuracy - a.interval[0] for _, a in points], [a.interval[1] - a.accuracy for _, a in points]]
            line = left.errorbar(
                xs, ys, yerr=errors, marker="o", capsize=3, label=student_label(student, report.settings)
            )
            color = line[0].get_color()
            unfinished = [(level, a.accuracy) for level, a in points if a.missing_seeds]
            if unfinished:  # every output marks an arm compared on fewer seeds than asked
                left.scatter(
                    *zip(*unfinished, strict=True),
                    s=150,
                    facecolors="none",
                    edgecolors="red",
                    label="_nolegend_" if ringed else "unfinished seeds",  # one legend entry for every student
                )
                ringed = True
        # Arms with no level (the human baseline, native traces, condensed levels, mixtures): a line each, each
        # in its own dash pattern so that two of one student's are told apart.
        level_less = [arm for arm in report.arms if arm.student == student and arm.level is None]
        for arm, dashes in zip(level_less, itertools.cycle(_DASHES), strict=False):
            left.axhline(
                arm.accuracy,
                linestyle=dashes,
                color=color,
                alpha=0.6,
                label=f"{student_label(student, report.settings)}: {arm.arm}",
            )
    left.set_xlabel("granularity level (0: answer only)")
    left.set_ylabel("held-out accuracy")
    left.set_xticks(range(0, 7))
    left.grid(alpha=0.3)
    # Below the axes: inside, it hid the points of the study it describes.
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    words = sorted({(a.level, a.mean_rationale_words) for a in report.arms if a.level is not None})
    right.bar([w[0] for w in words], [w[1] for w in words], color="grey")
    right.set_xlabel("granularity level")
    right.set_ylabel("mean rationale length (words)")
    right.set_xticks(range(0, 7))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()

"""A sweep folder's layout, spelled here only (as corpus/ spells the build and student directories).

<dir>/sweep.json                  the SweepSettings (a re-run must ask for the same)
<dir>/held_out.json               the held-out check, the ids of the test and training problems, and (a hold-out drawn
                                  from the corpus) each test problem's near-variant group (sweeps.files.HeldOut)
<dir>/corpus/                     the corpus, when the sweep fetched it (the paper's files, a Hub repo)
<dir>/cells/<cell>/data/          the cell's training data (a build directory)
<dir>/cells/<cell>/model/         its student (a student directory), removed unless --keep-models
<dir>/cells/<cell>/predictions.parquet, eval_report.json   its evaluation
<dir>/cells/<cell>/cell.json      its CellResult, written last: the cell is finished
<dir>/adaptive.json              the cells the sweep chose not to run (adaptive rounds, --prune), and why
<dir>/predict/                    --predict: every record the arms train on (a build directory), scored per student
<dir>/predicted.json              --predict: each arm's scores under each student (sweeps.predict.Prediction)
<dir>/sweep_report.json, sweep_report.md, sweep.png          the merged report
"""

from __future__ import annotations

from pathlib import Path

from cotforge.corpus.folder import Folder


class SweepDir(Folder):
    @property
    def settings_path(self) -> Path:
        return self.file("sweep.json")

    @property
    def held_out_path(self) -> Path:
        return self.file("held_out.json")

    @property
    def corpus_dir(self) -> Path:
        return self.file("corpus")

    @property
    def cells_dir(self) -> Path:
        return self.file("cells")

    @property
    def adaptive_path(self) -> Path:
        return self.file("adaptive.json")

    @property
    def predict_dir(self) -> Path:
        return self.file("predict")

    @property
    def predicted_path(self) -> Path:
        return self.file("predicted.json")

    @property
    def report_json(self) -> Path:
        return self.file("sweep_report.json")

    @property
    def report_md(self) -> Path:
        return self.file("sweep_report.md")

    @property
    def plot_path(self) -> Path:
        return self.file("sweep.png")

    def cell_dir(self, name: str) -> Path:
        return self.cells_dir / name

    def cell_file(self, name: str) -> Path:
        return self.cell_dir(name) / "cell.json"

    def finished_cells(self) -> list[Path]:
        return sorted(self.cells_dir.glob("*/cell.json"))

"""The Python API: what `import cotforge` offers. Build a corpus from a Recipe (or its YAML) with a progress
callback, open a finished build as typed records, a polars frame or a datasets.Dataset, push and pull it, train and
evaluate a student from a config object, score how well a corpus suits a student, run a sweep. The CLI is a thin
shell over these same calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotforge.builders.custom import CustomPrompt
from cotforge.builders.progress import ProgressCallback
from cotforge.corpus import BuildDir, BuildDirError
from cotforge.recipes.sources import LoadedSource
from cotforge.recipes.sources.checked import SourceCache
from cotforge.schemas import BuildReport, CoTRecord, Recipe, Rejection

if TYPE_CHECKING:
    import datasets
    import polars as pl

    from cotforge.contamination import ContaminationReport
    from cotforge.hub import PushResult
    from cotforge.judging import JudgeReport, Rubric
    from cotforge.schemas.recipe import JudgeSpec
    from cotforge.suitability import ScoreReport
    from cotforge.sweeps import SweepReport, SweepSettings
    from cotforge.train.config import TrainConfig
    from cotforge.train.evaluate import EvalReport
    from cotforge.train.loop import TrainReport

Log = Callable[[str], None]


class Corpus:
    """A finished (or partly finished) build directory, opened: every read validates rows into typed records."""

    def __init__(self, path: str | Path) -> None:
        self.dir = BuildDir(path)
        if not self.dir.is_build():
            raise BuildDirError(f"{path}: not a build directory (no subsets/ folder)")
        self.judged: JudgeReport | None = None  # the last judge() of it from this object

    def __repr__(self) -> str:
        return f"Corpus({str(self.path)!r}, subsets={self.subsets})"

    @property
    def path(self) -> Path:
        return self.dir.path

    @property
    def subsets(self) -> list[str]:
        return list(self.dir.subset_files())

    @property
    def report(self) -> BuildReport | None:
        return self.dir.read_report()

    @property
    def recipe(self) -> Recipe | None:
        return self.dir.read_recipe()

    def records(self, subset: str | None = None) -> list[CoTRecord]:
        """The accepted records of one subset, or of all of them."""
        return self.dir.read_records([subset] if subset else None)

    def rejections(self) -> list[Rejection]:
        """The answers kept aside, each with its reason."""
        return self.dir.read_rejections()

    def to_polars(self, subset: str | None = None) -> pl.DataFrame:
        """The records' columns and, for a judged build, a `judge_<rubric>` column per rubric (null: no score)."""
        from cotforge.schemas.judge import score_columns
        from cotforge.schemas.tables import to_frame

        frame = to_frame(self.records(subset), CoTRecord)
        if not self.dir.judge_scores_path.exists():
            return frame
        return frame.join(score_columns(self.dir.read_judge_scores()), on="key", how="left")

    def to_dataset(self, subset: str | None = None) -> datasets.Dataset:
        import datasets

        return datasets.Dataset.from_polars(self.to_polars(subset))

    def check(self, against: list[str] | None = None, *, split: str = "test", ngram: int = 8) -> ContaminationReport:
        """Training questions that are also evaluation questions (default: the test splits of the built-in data sets
        the corpus comes from); the report is saved in the build directory, where `train` reads it."""
        from cotforge.contamination import check_records

        report = check_records(self.records(), against, split=split, ngram=ngram)
        report.save(self.path)
        return report

    def judge(
        self,
        judge: JudgeSpec | dict[str, Any] | None = None,
        *,
        rubrics: list[str | Rubric] | None = None,
        subsets: list[str] | None = None,
        limit: int | None = None,
    ) -> JudgeReport:
        """Judge the accepted records (a pulled build's too): `judge` a JudgeSpec or its mapping (default: the build
        recipe's judge section); `rubrics` built-in names or your own `Rubric`s in place of its rubrics. Scores go to
        judge_scores.parquet, malformed verdicts to judge_rejections.parquet, means to cotforge_stats.json; each
        verdict is paid once (judge.sqlite), so running it again resumes. The report is also kept as `judged`."""
        from cotforge.judging import judge_build, judge_spec, resolve_rubric

        spec = judge_spec(self.path, judge)
        chosen = None if rubrics is None else [resolve_rubric(r) for r in rubrics]
        self.judged = judge_build(self.path, spec, chosen, subsets, limit)
        return self.judged

    def push(self, repo_id: str, *, contamination: str | None = None, **options: Any) -> PushResult:
        """Publish to a Hub dataset repo in one atomic commit; `options` are cotforge.hub.push's (private,
        include_rejected, license_id, message, allow_incomplete, token)."""
        from cotforge.hub import push

        return push(self.path, repo_id, contamination=contamination, **options)


@dataclass(frozen=True)
class BuildPlan:
    """A build resolved and its sources loaded, nothing sent yet: look at `summary()`, then `run()`."""

    recipe: Recipe
    sources: list[LoadedSource]
    out_dir: Path
    extend: bool = False
    custom: CustomPrompt | None = None
    _estimated: list[Any] = field(default_factory=list, repr=False, compare=False)  # summary(), once made

    def summary(self) -> Any:
        """Counts, tokens and cost estimated (a cotforge.builders.plan.PlanSummary)."""
        from cotforge.builders.plan import summarise

        if not self._estimated:
            self._estimated.append(summarise(self.recipe, self.sources, self._cache, self.custom))
        return self._estimated[0]

    @property
    def _cache(self) -> SourceCache:
        return SourceCache(BuildDir(self.out_dir).cache_dir)

    def run(self, progress: ProgressCallback | None = None) -> Corpus:
        """Build (or resume) it. Raises BuildInterrupted or BuildFailed (each carrying the report of what is
        stored); an incomplete build returns normally: see `corpus.report.failed` and `.pending`."""
        from cotforge.builders.build import run_build
        from cotforge.builders.plan import keep_summary, plan_stamp
        from cotforge.judging import judge_build, live_judge, refresh_judgements

        judge = self.recipe.judge
        live = live_judge(self.recipe, BuildDir(self.out_dir).judge_store_path)
        try:
            run_build(self.recipe, self.sources, self.out_dir, progress, self.extend, self.custom, live)
        finally:  # the estimate made before the build, kept for the next run's plan
            if self._estimated:
                keep_summary(self._cache, self._estimated[0], plan_stamp(self.recipe, self.sources, self.custom))
        corpus = Corpus(self.out_dir)
        if judge is not None:  # its verdicts are stored: this pass asks only for what judging live left undone
            asked_live = live.judged if live is not None else 0
            corpus.judged = judge_build(self.out_dir, judge, asked_live=asked_live)
        else:  # judged before (`cotforge judge`): the export rewrote the statistics, so the means go back in
            refresh_judgements(self.out_dir)
        return corpus


def plan_build(
    recipe: Recipe | str | Path,
    out_dir: str | Path | None = None,
    *,
    sample: bool = False,
    extend: bool = False,
    custom: CustomPrompt | None = None,
    warn: Log | None = None,
) -> BuildPlan:
    """Resolve `recipe` (a Recipe, a YAML file or a built-in recipe's name) against `out_dir` (default
    builds/<name>-<hash>) and load its sources (`sample`: the built-in sample rows, offline)."""
    from cotforge.builders.outdir import check_build_dir, with_custom_prompt
    from cotforge.recipes import load_recipe
    from cotforge.recipes.identity import recipe_digest
    from cotforge.recipes.sources import load_sources

    resolved = with_custom_prompt(recipe if isinstance(recipe, Recipe) else load_recipe(recipe), custom)
    target = Path(out_dir) if out_dir is not None else Path("builds") / f"{resolved.name}-{recipe_digest(resolved)}"
    resolved = check_build_dir(target, resolved, extend)
    checked = SourceCache(BuildDir(target).cache_dir)  # read here; written by the build itself
    return BuildPlan(resolved, load_sources(resolved, sample, warn, checked), target, extend, custom)


def build(
    recipe: Recipe | str | Path,
    out_dir: str | Path | None = None,
    *,
    sample: bool = False,
    progress: ProgressCallback | None = None,
    extend: bool = False,
    custom: CustomPrompt | None = None,
    warn: Log | None = None,
) -> Corpus:
    """Build (or resume) a corpus and open it: plan_build(...).run(progress)."""
    plan = plan_build(recipe, out_dir, sample=sample, extend=extend, custom=custom, warn=warn)
    return plan.run(progress)


def open_build(path: str | Path) -> Corpus:
    """A build directory made by `build`, `pull`, `import_paper` or `cotforge build`."""
    return Corpus(path)


def pull(
    repo_id: str,
    out_dir: str | Path,
    *,
    subset: str | None = None,
    split: str = "train",
    revision: str | None = None,
    overwrite: bool = False,
) -> Corpus:
    """Download a published corpus, validate every row into a typed record, and save it as a build directory.
    `out_dir` must be new or empty unless `overwrite` (checked before anything is downloaded)."""
    from cotforge.hub import check_repo_id
    from cotforge.hub_pull import check_pull_target, pull_corpus, save_pulled

    check_repo_id(repo_id)
    check_pull_target(Path(out_dir), overwrite)
    pulled = pull_corpus(repo_id, subset, split=split, revision=revision)
    save_pulled(pulled, Path(out_dir), f"pull of {repo_id}", overwrite)
    return Corpus(out_dir)


def import_paper(folder: str | Path, out_dir: str | Path) -> Corpus:
    """The CoT files released with arXiv 2502.18001, imported as typed records verified against the gold answers."""
    from cotforge.paper import import_paper as import_files

    import_files(Path(folder), Path(out_dir))
    return Corpus(out_dir)


def train_student(config: TrainConfig, log: Log | None = None) -> TrainReport:
    """Fine-tune a student as `config` says; the student, its train_report.json and loss curve go to
    config.output.output_dir (a cotforge.corpus.StudentDir). Not `cotforge.train`: that name is the trainer's package,
    which an import of `cotforge.train.*` (TrainConfig's, for one) would put in place of a function."""
    from cotforge.train.loop import train as fit

    return fit(config, log=log or _quiet)


def evaluate(model: str | Path, benchmarks: list[str], *, log: Log | None = None, **options: Any) -> EvalReport:
    """Accuracy of a student on built-in benchmarks; `options`: split, sample, limit, max_new_tokens, batch_size,
    gguf_file, out_dir (predictions.parquet and eval_report.json go there)."""
    from cotforge.train.evaluate import evaluate as score

    return score(str(model), benchmarks, log=log or _quiet, **options)


def score(dataset: str | Path, student: str, **options: Any) -> ScoreReport:
    """How well each record of a corpus suits `student` before training (the Rank-Surprisal Ratio and its two
    baselines, cotforge.quality.rsr): per record into the build's suitability.parquet, per subset into its
    cotforge_stats.json; what the same student (weights) already scored is reused, never made again. `dataset`: a
    build directory, or a Hub repo pulled once into the user's cache. `options`: gguf_file, subsets, template,
    reasoning, max_length (the trainer's defaults), batch_size, progress (called after each batch)."""
    from cotforge.fetch import fetch_corpus, pulled_dir
    from cotforge.suitability import score_build

    path = Path(dataset)
    directory = BuildDir(path) if path.is_dir() else fetch_corpus(str(dataset), pulled_dir(str(dataset), "score"))
    return score_build(directory, student, **options)


def sweep(
    settings: SweepSettings,
    out_dir: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    keep_models: bool = False,
    jobs: int = 1,
    ray: str | None = None,
    ray_cpus: int = 1,
    predict: bool = False,
    log: Log | None = None,
) -> SweepReport | None:
    """Run a sweep (this shard's cells); the merged report once every cell of every shard is done, else None.
    `jobs`: cells at once on this machine (one GPU each, or the cores split); `ray`: each cell a Ray task on the
    cluster at this address (local, auto, host:port), with `ray_cpus` CPUs where it has no GPU; `predict`: every arm
    scored under every student first (as settings.prune does). Raises cotforge.sweeps.CellsFailed, once the other
    cells have run, if any failed (the finished ones are kept)."""
    from cotforge.sweeps import build_report, executor_for, run_sweep

    folder = Path(out_dir)
    executor = executor_for(jobs, ray, ray_cpus)
    _, unfinished = run_sweep(
        settings,
        folder,
        shard=shard,
        keep_models=keep_models,
        executor=executor,
        predict=predict,
        log=log or _quiet,
    )
    return None if unfinished else build_report(folder)


def judge(
    path: str | Path,
    judge: JudgeSpec | dict[str, Any] | None = None,
    *,
    rubrics: list[str | Rubric] | None = None,
    subsets: list[str] | None = None,
    limit: int | None = None,
) -> JudgeReport:
    """Corpus(path).judge(...): judge a build directory's accepted records."""
    return Corpus(path).judge(judge, rubrics=rubrics, subsets=subsets, limit=limit)


def _quiet(line: str) -> None:
    """The default log of the API: silent (the CLI passes one that prints)."""

"""The viewer shows the judge's scores and reasons (a column per rubric, the judge filter, the record page) from a
live judge store, from judge_scores.parquet alone (a build without a store, a pulled one), and nothing of a judge
for a build never judged; every reason is shown escaped."""

from __future__ import annotations

import re
import shutil
import urllib.parse
from pathlib import Path

from cotforge.corpus import BuildDir
from cotforge.judging import judge_build
from cotforge.judging.store import JudgeStore
from cotforge.schemas.judge import JudgeScore

from .test_judge import _built, _spec
from .test_view import Viewer, rows_of

HOSTILE = "<script>alert('judge')</script> & more"


def _judged(tmp_path: Path, url: str) -> tuple[Path, dict[str, str]]:
    """A scripted build judged under `faithful` (scores 4 and 2, three malformed verdicts), then a `leak` verdict
    with a hostile reason stored in judge.sqlite (as a judge still running would); the keys by question."""
    out = _built(tmp_path, url)
    judge_build(out, _spec(url))
    build = BuildDir(out)
    keys = {r.question.split()[0]: r.key for records in build.read_subsets().values() for r in records}
    _put_leak(out, keys["Q0"], 1, HOSTILE)
    return out, keys


def _put_leak(out: Path, key: str, score: int, reason: str) -> None:
    build = BuildDir(out)
    (subset,) = build.read_subsets()
    leak = JudgeScore(
        key=key, subset=subset, rubric="leak", rubric_version="1", judge_model="judge", score=score, reason=reason
    )
    with JudgeStore(build.judge_store_path) as store:
        store.put(leak)


def _browse(viewer: Viewer, **query: str) -> str:
    return viewer.get("/browse?" + urllib.parse.urlencode(query))[1]


def test_a_judged_build_shows_each_rubrics_score_and_reason_and_filters_on_them(tmp_path: Path, scripted) -> None:
    out, keys = _judged(tmp_path, scripted.url)
    viewer = Viewer(out).start()
    try:
        page = _browse(viewer)
        assert '<th scope="col">judge: faithful</th>' in page and '<th scope="col">judge: leak</th>' in page
        assert 'name="judge"' in page and len(rows_of(page)) == 5
        assert "<b>4</b> <span class=meta>Scripted verdict.</span>" in page
        assert (
            "<script>alert(" not in page and "&lt;script&gt;alert(&#x27;judge&#x27;)&lt;/script&gt; &amp; more" in page
        )
        weak = rows_of(_browse(viewer, judge="faithful <= 2"))
        assert len(weak) == 1 and "verdict=2" in weak[0] and "Records 1-1." in _browse(viewer, judge="faithful<=2")
        assert len(rows_of(_browse(viewer, judge="faithful >= 2"))) == 2
        assert "verdict=4" in rows_of(_browse(viewer, judge="leak = 1", text="Q0"))[0]
        assert rows_of(_browse(viewer, judge="level <= 5")) == []  # a rubric no record was judged under
        bad = _browse(viewer, judge="faithful >> 2")
        assert "judge filter &#x27;faithful &gt;&gt; 2&#x27;: write a rubric" in bad and len(rows_of(bad)) == 5
        record = viewer.get(f"/question?id={urllib.parse.quote(_problem(out, keys['Q0']))}")[1]
        assert "judge, faithful: <b>4</b>" in record and "judge, leak: <b>1</b>" in record
        assert "<script>alert(" not in record and "&lt;script&gt;alert(" in record
        overview = viewer.get("/")[1]
        assert "<h2>Judge</h2>" in overview and "faithful+%3C%3D+3" in overview
        assert re.search(r">faithful</td><td class=\"n\">2</td><td class=\"n\">3\.00</td>", overview)
        _put_leak(out, keys["Q4"], 5, "Derived.")  # a judge still writing: the next request shows its verdict
        assert re.search(r">leak</td><td class=\"n\">2</td><td class=\"n\">3\.00</td>", viewer.get("/")[1])
    finally:
        viewer.stop()


def _problem(out: Path, key: str) -> str:
    return next(r.problem_id for rs in BuildDir(out).read_subsets().values() for r in rs if r.key == key)


def test_judge_scores_parquet_alone_is_shown_and_a_build_never_judged_shows_no_judge(tmp_path: Path, scripted) -> None:
    out, keys = _judged(tmp_path, scripted.url)
    pulled = tmp_path / "pulled"  # what a pull writes: the outputs and judge_scores.parquet, no store
    shutil.copytree(out, pulled, ignore=shutil.ignore_patterns("store.sqlite*", "judge.sqlite*"))
    assert not BuildDir(pulled).judge_store_path.exists() and BuildDir(pulled).judge_scores_path.exists()
    viewer = Viewer(pulled).start()
    try:
        page = _browse(viewer)
        assert "Parquet outputs" in viewer.get("/")[1]
        assert '<th scope="col">judge: faithful</th>' in page and "judge: leak" not in page  # leak came later
        strong = rows_of(_browse(viewer, judge="faithful>=4"))
        assert len(strong) == 1 and "verdict=4" in strong[0]
        record = viewer.get(f"/question?id={urllib.parse.quote(_problem(out, keys['Q4']))}")[1]
        assert "judge, faithful: <b>2</b> <span class=meta>Scripted verdict.</span>" in record
    finally:
        viewer.stop()
    BuildDir(pulled).judge_scores_path.write_bytes(b"not parquet")
    viewer = Viewer(pulled).start()
    try:
        status, page = viewer.get("/browse")
        assert status == 500 and "pulled/judge_scores.parquet: not a judge scores file" in page
    finally:
        viewer.stop()
    plain = tmp_path / "plain"
    shutil.copytree(out, plain, ignore=shutil.ignore_patterns("judge*"))
    viewer = Viewer(plain).start()
    try:
        page = _browse(viewer)
        assert "judge" not in page.lower() and len(rows_of(page)) == 5
        assert "judge" not in viewer.get(f"/question?id={urllib.parse.quote(_problem(out, keys['Q0']))}")[1]
    finally:
        viewer.stop()

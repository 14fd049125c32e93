"""`cotforge view`: every page over HTTP against a real build (the store while it is written, and the Parquet
outputs of an import), escaping, no file served, 127.0.0.1 only, and the command's start and stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from cotforge.builders.store import Store
from cotforge.builders.store_queries import AnswerQuery
from cotforge.corpus import BuildDir
from cotforge.schemas.record import CoTRecord, Rejection, RejectionReason
from cotforge.view import make_app
from cotforge.view.reader import PAGE_SIZE, Filters
from cotforge.view.store import open_reader

from .aio_server import BackgroundServer
from .helpers import made_sweep, scripted_recipe, write_problems
from .scripted_server import ScriptedServer
from .test_build import build

SCRIPT = "<script>alert(1)</script>"
ROOT = Path(__file__).resolve().parent.parent


class Viewer(BackgroundServer):
    """The viewer's app on a free port of 127.0.0.1, in a thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def make_app(self):
        return make_app(self.folder)

    def get(self, path: str, host: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if host:
            request.add_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def make_view_build(out: Path, extras: bool = True) -> Path:
    """Four problems at levels 1 and 4, two samples each: right, wrong, cut by the budget (a truncated rejection);
    then a record whose rationale holds a script and a rejection whose raw response holds markup, stored through
    the store's API (so the store is ahead of the Parquet outputs, as while a build runs)."""
    server = ScriptedServer().start()
    try:
        questions = ["apples answer=5", "pears answer=5", "plums answer=6", "cherries fault=length,length"]
        problems = write_problems(out.parent / f"{out.name}-problems.jsonl", questions)
        recipe = scripted_recipe(problems, server.url, granularities=[1, 4], sampling={"n": 2})
        build(recipe, out)
    finally:
        server.stop()
    if not extras:
        return out
    with Store(BuildDir(out).store_path) as store:
        first = next(r for r in store.rows() if isinstance(r, CoTRecord) and r.granularity == 1)
        store.put(
            first.model_copy(update={"key": "xss", "sample_index": 2, "rationale": f"Look: {SCRIPT}\nThe answer is 5"})
        )
        rejection = Rejection(
            **first.model_dump(include=set(Rejection.model_fields) - {"reason", "detail", "raw_response"}),
            reason=RejectionReason.unparseable,
            detail="no final answer",
            raw_response='<img src=x onerror="alert(2)"> no answer here',
        ).model_copy(update={"key": "xss-rejected", "sample_index": 3})
        store.put(rejection)
    return out


@pytest.fixture(scope="module")
def view_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_view_build(tmp_path_factory.mktemp("view") / "build")


@pytest.fixture(scope="module")
def viewer(view_build: Path):
    server = Viewer(view_build).start()
    yield server
    server.stop()


def problem_id(build_dir: Path, word: str) -> str:
    with Store(BuildDir(build_dir).store_path) as store:
        return next(r.problem_id for r in store.rows() if word in getattr(r, "question", "") or word in r.problem_id)


def cut_problem(build_dir: Path) -> str:
    """The problem whose answers were all cut by the budget (rejections carry no question text)."""
    with Store(BuildDir(build_dir).store_path) as store:
        return next(r.problem_id for r in store.rejections() if r.reason is RejectionReason.truncated)


def rows_of(page: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>", 1)[1], flags=re.S) if "<tbody>" in page else []


def test_overview_counts_the_store_and_draws_the_plots(viewer: Viewer) -> None:
    status, page = viewer.get("/")
    assert status == 200 and '<html lang="en">' in page
    # 3 problems x 2 levels x 2 samples accepted, plus the stored one; the cut problem's 4 answers, plus one.
    assert re.search(r"accepted</th><td class=\"n\">13<", page)
    assert re.search(r"rejected: truncated</th><td class=\"n\">4<", page)
    assert re.search(r"rejected: unparseable</th><td class=\"n\">1<", page)
    assert "scripted-g1-cot" in page and "scripted-g4-cot" in page
    assert page.count("<svg") == 2 and "Accuracy by level" in page
    assert '<th scope="col">accuracy</th>' in page
    # level 4: 4 of 6 right (the plums are answered 6, their gold is 5)
    assert re.search(r"scripted-g4-cot</a></th>(<td>[^<]*</td>){4}<td class=\"n\">6</td><td class=\"n\">66\.7%", page)


def test_a_question_shows_every_level_side_by_side_with_neighbours(viewer: Viewer, view_build: Path) -> None:
    pears = problem_id(view_build, "pears")
    status, page = viewer.get(f"/question?id={pears}")
    assert status == 200
    assert '<th scope="col">level 1</th><th scope="col">level 4</th>' in page
    rows = rows_of(page.split("Every answer", 1)[1])
    assert [re.search(r"sample (\d)", r).group(1) for r in rows] == ["0", "1"]
    assert all(r.count("✓ correct") == 2 for r in rows)  # each sample at both levels
    assert "read from: canonical" in page and "next question" in page and "previous question" in page
    plums = problem_id(view_build, "plums")
    assert viewer.get(f"/question?id={plums}")[1].count("✗ incorrect") == 4
    found = viewer.get(f"/question?q={cut_problem(view_build)}")[1]  # by id
    assert "rejected: truncated" in found and "We work it out step" in found  # raw response of the cut answer
    assert viewer.get("/question?q=PEARS")[1].count("✓ correct") == 4  # by text, one question found
    assert "No question has the id" in viewer.get("/question?q=nothing-like-it")[1]


def test_browse_filters_and_pages(viewer: Viewer, view_build: Path) -> None:
    page = viewer.get("/browse")[1]
    assert "Records 1-13 of 13" in page and len(rows_of(page)) == 13
    wrong = viewer.get("/browse?correct=no")[1]
    assert len(rows_of(wrong)) == 4 and "plums" in wrong and "pears" not in wrong
    level = viewer.get("/browse?level=4&text=PEARS")[1]
    assert len(rows_of(level)) == 2 and all("scripted-g4-cot" in r for r in rows_of(level))
    cut = viewer.get("/browse?kind=rejections&reason=truncated")[1]
    assert len(rows_of(cut)) == 4 and "We work it out step" in cut and "unparseable" not in "".join(rows_of(cut))
    assert '<label for="f-reason">' in cut and 'id="f-reason"' in cut
    reader = open_reader(view_build)
    first, second = reader.page(Filters(), size=5), reader.page(Filters(page=1), size=5)
    assert first.total == 13 and first.more and second.more and not reader.page(Filters(page=2), size=5).more
    assert {r["key"] for r in first.rows}.isdisjoint(r["key"] for r in second.rows)
    filtered = reader.page(Filters(correct="yes"), size=5)
    assert filtered.total is None and filtered.more and all(r["correct"] for r in filtered.rows)


def test_untrusted_text_renders_as_text(viewer: Viewer, view_build: Path) -> None:
    apples = problem_id(view_build, "apples")
    for path in (f"/question?id={apples}", "/browse?text=alert", "/browse?kind=rejections&reason=unparseable"):
        page = viewer.get(path)[1]
        assert "<script>alert" not in page and "<img src=x" not in page, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in viewer.get(f"/question?id={apples}")[1]
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in viewer.get("/browse?kind=rejections")[1]
    assert "&lt;script&gt;" in viewer.get(f"/browse?text={SCRIPT}")[1]  # the search box keeps it as text too


def test_no_file_is_served_and_other_hosts_are_refused(viewer: Viewer) -> None:
    for path in ("/store.sqlite", "/subsets/scripted-g1-cot.parquet", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/static/../store.sqlite", "/build_report.json"):  # fmt: skip
        status, body = viewer.get(path)
        assert status == 404 and "root:" not in body, path
    status, page = viewer.get("/browse?subset=../../../etc/passwd")
    assert status == 200 and "root:" not in page and "Records none of 0" in page
    assert viewer.get("/", host="evil.example:80")[0] == 403  # a DNS-rebound name
    assert viewer.get("/", host="localhost")[0] == 200


def test_refresh_shows_answers_stored_while_the_viewer_runs(tmp_path: Path) -> None:
    out = make_view_build(tmp_path / "live")
    server = Viewer(out).start()
    try:
        before = server.get("/")[1]
        assert re.search(r"accepted</th><td class=\"n\">13<", before)
        reader = open_reader(out)
        with Store(BuildDir(out).store_path) as store, reader._read() as snapshot:  # a read open: the writer goes on
            assert snapshot.count(AnswerQuery()) == 13  # the records
            record = next(r for r in store.rows() if isinstance(r, CoTRecord))
            store.put(record.model_copy(update={"key": "late", "sample_index": 7}))
        after = server.get("/")[1]
        assert re.search(r"accepted</th><td class=\"n\">14<", after)
        assert "Records 1-14 of 14" in server.get("/browse")[1]
        assert '<meta http-equiv="refresh"' in server.get("/?live=1")[1]
    finally:
        server.stop()


def test_a_finished_build_answers_column_queries_from_its_outputs(tmp_path: Path) -> None:
    out = make_view_build(tmp_path / "done", extras=False)
    reader = open_reader(out)
    with reader._read() as db:
        assert reader._exported(db) is not None  # nothing stored since the outputs were written
    found = reader.page(Filters(text="PEARS", level="4"))
    assert len(found.rows) == 2 and all("pears" in r["question"] and r["granularity"] == 4 for r in found.rows)
    assert [r["subset"] for r in reader.page(Filters(text="pears")).rows] == ["scripted-g1-cot"] * 2 + [
        "scripted-g4-cot"
    ] * 2
    pears = problem_id(out, "pears")
    assert len(reader.question(pears)) == 4 and reader.totals().accepted == 12
    with Store(BuildDir(out).store_path) as store:  # one more answer: the store is ahead, and read itself
        record = next(r for r in store.rows() if isinstance(r, CoTRecord) and r.problem_id == pears)
        store.put(record.model_copy(update={"key": "late", "sample_index": 5}))
    with reader._read() as db:
        assert reader._exported(db) is None
    assert len(reader.question(pears)) == 5 and reader.totals().accepted == 13
    assert len(reader.page(Filters(text="pears")).rows) == 5


def test_a_build_without_a_store_reads_its_parquet_files(paper_build: Path) -> None:
    server = Viewer(paper_build).start()
    try:
        page = server.get("/")[1]
        assert "Parquet outputs" in page and "gpt-4o-g3-symbolic" in page and page.count("<svg") == 2
        frame = pl.read_parquet(paper_build / "subsets" / "gpt-4o-g5-cot.parquet", columns=["correct"])
        accuracy = f"{frame['correct'].mean():.1%}"
        assert re.search(rf"gpt-4o-g5-cot</a></th>(<td>[^<]*</td>){{4}}<td class=\"n\">{len(frame)}</td>"
                         rf"<td class=\"n\">{re.escape(accuracy)}", page)  # fmt: skip
        question = server.get("/question")[1]
        for level in range(1, 7):
            assert f'<th scope="col">level {level}</th>' in question
        assert "next question" in question
        wrong = server.get("/browse?level=5&teacher=gpt-4o&format=cot&correct=no")[1]
        assert rows_of(wrong) and all("✗ incorrect" in r and "gpt-4o-g5-cot" in r for r in rows_of(wrong))
        rejections = server.get("/browse?kind=rejections")[1]
        assert "Rejections 1-1 of 1" in rejections and "unparseable" in rejections
        raw = pl.read_parquet(paper_build / "rejections.parquet")["raw_response"][0]
        searched = server.get(f"/browse?kind=rejections&text={urllib.parse.quote(raw[3:20].upper())}")[1]
        assert len(rows_of(searched)) == 1 and len(rows_of(server.get("/browse?kind=rejections&text=zzzq")[1])) == 0
    finally:
        server.stop()


def test_the_stats_file_is_shown_escaped(tmp_path: Path, view_build: Path) -> None:

    out = tmp_path / "copy"
    shutil.copytree(view_build, out)
    stats = {"scripted-g1-cot": {"rows": 7, "pass_rate": 0.75, "note": "<b>bold</b>", "hist": [1, 2]}}
    BuildDir(out).stats_path.write_text(json.dumps(stats))
    server = Viewer(out).start()
    try:
        page = server.get("/")[1]
        assert "cotforge_stats.json" in page and '<th scope="col">pass_rate</th>' in page
        assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page and "0.75" in page
    finally:
        server.stop()


def make_sweep(folder: Path) -> Path:
    """A sweep folder of one student at levels 1 and 5 (one seed each), finished and reported, over 4 questions."""
    from cotforge.sweeps import build_report

    right = {1: [True, False, False, True], 5: [True, True, False, True]}
    sweep = made_sweep(folder, right, question="<i>question</i> {}")
    build_report(sweep.path)
    return sweep.path


def test_a_sweep_folder_shows_its_report_and_each_cell_per_question(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "sweep")
    server = Viewer(sweep).start()
    try:
        page = server.get("/")[1]
        assert "no arm can be told apart from the best" in page and "g5 75.0%" in page and "<svg" in page
        assert "Held-out accuracy by level" in page and "could be best" in page
        rows = rows_of(page.split("Held-out questions", 1)[1])
        assert len(rows) == 4 and "&lt;i&gt;question&lt;/i&gt;" in rows[1]
        second = rows[1]  # g1 wrong (7), g5 right (5)
        assert re.search(
            r'<td class="n">1</td><td><span class="bad">✗</span> 7</td><td><span class="ok">✓</span> 5', second
        )
    finally:
        server.stop()


def damaged(source: Path, out: Path, file: str) -> Path:
    """A copy of the folder `source` in which `file` holds bytes that are no SQLite or Parquet file."""
    shutil.copytree(source, out)
    (out / file).write_bytes(b"PAR1 torn by a full disk " * 100)
    return out


def test_damaged_stores_and_sweep_files_are_the_viewers_own_page_with_a_sentence(
    tmp_path: Path, view_build: Path, paper_build: Path
) -> None:
    # Issue 36: a damaged store, Parquet output or sweep file gave a bare "500 Internal Server Error".
    cases = [
        (damaged(view_build, tmp_path / "store", "store.sqlite"), "store/store.sqlite: not a readable cotforge store"),
        (damaged(paper_build, tmp_path / "outputs", "subsets/gpt-4o-g5-cot.parquet"), "outputs: a file cannot be read"),
    ]
    for folder, sentence in cases:
        server = Viewer(folder).start()
        try:
            for path in ["/", "/question", "/browse", "/browse?kind=rejections"]:
                status, page = server.get(path)
                assert status == 500 and "· cotforge view</title>" in page and sentence in page, (path, page[:200])
                assert "Traceback" not in page and str(tmp_path) not in page, "no path outside the folder"
        finally:
            server.stop()
    # A sweep cell whose predictions cannot be read is unfinished: the page shows the others and says why.
    sweep = damaged(make_sweep(tmp_path / "s"), tmp_path / "sweep", "cells/student-g5-seed1/predictions.parquet")
    server = Viewer(sweep).start()
    try:
        status, page = server.get("/")
        assert status == 200 and "Traceback" not in page
        assert str(tmp_path) not in page.replace(str(sweep), "sweep"), "no path outside the folder shown"
        assert "student-g5-seed1" in page.split("class=bad>", 1)[1].split("</p>", 1)[0], "said why it is left out"
        (sweep / "sweep_report.json").write_text('{"torn": ')
        status, page = server.get("/")
        assert status == 200 and "sweep/sweep_report.json: torn or edited" in page and "Traceback" not in page
    finally:
        server.stop()


def test_page_numbers_past_the_end_show_the_last_page(viewer: Viewer, paper_build: Path, tmp_path: Path) -> None:
    # Issue 36: /browse?page=9223372036854775807 was a 500 (the SQL offset overflowed).
    huge = 2**63 - 1
    status, page = viewer.get(f"/browse?page={huge}")
    assert status == 200 and "Records 1-13 of 13" in page and "page 1 of 1" in page
    status, page = viewer.get(f"/browse?correct=yes&page={huge}")  # a filter that reads rows: no total to clamp to
    assert status == 200 and len(rows_of(page)) == 9 and "page 1<" in page
    server = Viewer(paper_build).start()
    try:
        records = pl.scan_parquet(paper_build / "subsets" / "*.parquet").select(pl.len()).collect().item()
        last = (records - 1) // PAGE_SIZE
        for query in (f"page={huge}", f"page={10**40}", f"text=the&page={huge}"):
            status, page = server.get(f"/browse?{query}")
            assert status == 200 and rows_of(page), query
        assert f"page {last + 1:,} of {last + 1:,}" in server.get(f"/browse?page={huge}")[1]
    finally:
        server.stop()
    server = Viewer(make_sweep(tmp_path / "sweep")).start()
    try:
        status, page = server.get(f"/?page={huge}")
        assert status == 200 and len(rows_of(page.split("Held-out questions", 1)[1])) == 4 and "page 1 " in page
    finally:
        server.stop()


def cotforge_view(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "cotforge", "view", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=environment,
    )  # fmt: skip


def test_the_command_listens_on_localhost_and_stops_on_ctrl_c(view_build: Path) -> None:
    process = cotforge_view(str(view_build))
    try:
        line = process.stdout.readline()
        url = re.search(r"http://(\S+?):(\d+)/", line)
        assert url and url.group(1) == "127.0.0.1", line
        with urllib.request.urlopen(url.group(0), timeout=30) as response:
            assert response.status == 200 and "Overview" in response.read().decode()
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 130 and "viewer stopped" in errors and "Traceback" not in errors
    finally:
        process.kill()


def test_the_command_explains_what_it_cannot_show(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    cases = ((tmp_path / "empty", "not a build directory"), ("no/such/thing/", "not a folder"))
    for target, expected in (*cases, ("../../etc pass/wd", "not a Hub repo id")):
        process = cotforge_view(str(target))
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 2 and expected in errors and "Traceback" not in errors, errors


@pytest.mark.integration
def test_a_hub_corpus_is_pulled_into_the_cache_and_shown(tmp_path: Path, scripted) -> None:
    from .hub_server import LocalHub
    from .test_hub import OFFLINE, TOKEN, hub_env

    problems = write_problems(tmp_path / "p.jsonl", ["q1 answer=5", "q2 answer=5"])
    build(scripted_recipe(problems, scripted.url, granularities=[1, 4]), tmp_path / "build")
    hub = LocalHub(token=TOKEN).start()
    try:
        env = {**hub_env(hub, tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
        code = OFFLINE + "import sys; from cotforge.entry import main; sys.argv = ['cotforge', *sys.argv[1:]]; main()"
        pushed = subprocess.run(
            [sys.executable, "-c", code, "push", str(tmp_path / "build"), "me/cot"], env=env, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        process = subprocess.Popen(
            [sys.executable, "-c", code, "view", "me/cot"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip
        try:
            assert "pulled me/cot into" in process.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+/", process.stdout.readline())
            assert url
            with urllib.request.urlopen(url.group(0), timeout=30) as response:
                page = response.read().decode()
            assert "scripted-g1-cot" in page and "scripted-g4-cot" in page
            assert (tmp_path / "cache" / "cotforge" / "view" / "me--cot" / "subsets").is_dir()
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 130
        finally:
            process.kill()
        missing = subprocess.run(
            [sys.executable, "-c", code, "view", "me/nothing-here"], env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert missing.returncode == 2 and "me/nothing-here" in missing.stderr and "Traceback" not in missing.stderr
    finally:
        hub.stop()

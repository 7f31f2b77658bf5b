"""The classify step: files in and out (CSV, JSONL, stdin), evaluation, training, `netra run`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from classifiers.model import LoadedModel
from pipeline.classify import (
    classify_file,
    evaluate_file,
    evaluate_texts,
    format_evaluation,
    load_scoring_model,
    score_new_posts,
    train_model,
)
from pipeline.config import ClassifierConfig, Config, PathsConfig
from pipeline.errors import InputFileError, UsageError
from pipeline.store import Store, StoredPost
from tests.conftest import PROJECT_ROOT, make_post, netra

ROWS = [
    {"id": "a1", "text": "Ayo coblos nomor 2! #AgusRatna2024 pasti menang ✌️", "source": "demo"},
    {"id": "a2", "text": "Jadwal pelayanan KTP-el di kecamatan buka jam 8 pagi.", "source": "asn"},
    {"id": "a3", "text": "", "source": "asn"},
    {
        "id": "a4",
        "text": "Bambang Endang pilihan kita, #BersamaBE sampai menang!",
        "source": "demo",
    },
]


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    """The shipped model with every profile."""
    return load_scoring_model(Config())


def write_csv(path: Path, rows: list[dict[str, str]], fields: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_classify_csv_keeps_columns_and_adds_results(tmp_path: Path, model: LoadedModel) -> None:
    source = write_csv(tmp_path / "in.csv", ROWS)
    report = classify_file(str(source), str(tmp_path / "out.csv"), model=model)
    with (tmp_path / "out.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == ["a1", "a2", "a3", "a4"]
    assert set(rows[0]) == {
        "id",
        "text",
        "source",
        "score",
        "label",
        "contestants",
        "explanation",
        "flags",
    }
    assert all(0.0 <= float(row["score"]) <= 1.0 for row in rows)
    assert rows[0]["label"] == "partisan" and rows[1]["label"] == "not_partisan"
    assert rows[2]["flags"] == "empty_text" and rows[2]["score"] == "0.000000"
    assert "Agus Salim Harahap" in rows[0]["contestants"]
    assert rows[0]["explanation"]
    assert report.rows == 4 and report.flagged == {"empty_text": 1}


def test_classify_jsonl_with_election_filter(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(json.dumps({"isi": row["text"], "n": i}) for i, row in enumerate(ROWS)) + "\n",
        encoding="utf-8",
    )
    classify_file(
        str(source),
        str(tmp_path / "out.jsonl"),
        text_column="isi",
        elections=["pilkada-2024-sumber-makmur"],
    )
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [item["n"] for item in out] == [0, 1, 2, 3]
    # with only the demo contest loaded, "nomor 2" resolves to its second ticket
    assert out[0]["contestants"] == ["Ir. Agus Salim Harahap", "dr. Ratna Kusumawati"]
    assert isinstance(out[0]["explanation"][0], list)


def test_missing_text_column_names_the_columns(tmp_path: Path, model: LoadedModel) -> None:
    source = write_csv(tmp_path / "in.csv", [{"id": "1", "isi": "halo"}])
    with pytest.raises(UsageError, match=r"no text column 'text'; found columns: id, isi"):
        classify_file(str(source), str(tmp_path / "out.csv"), model=model)
    assert not (tmp_path / "out.csv").exists()


def test_bad_jsonl_line_names_file_and_line(tmp_path: Path, model: LoadedModel) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\n{rusak\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"in.jsonl:2: invalid JSON"):
        classify_file(str(source), str(tmp_path / "out.jsonl"), model=model)


def test_stdin_csv_to_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], model: LoadedModel
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("text,id\nAyo pilih nomor 1 #BersamaBE,7\n"))
    classify_file("-", None, model=model)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["id"] == "7" and rows[0]["label"] in ("partisan", "not_partisan")


def test_evaluate_reports_metrics_and_sources(tmp_path: Path) -> None:
    rows = [dict(row, label=str(int(i in (0, 3)))) for i, row in enumerate(ROWS)]
    source = write_csv(tmp_path / "gold.csv", rows)
    report = evaluate_file(source)
    overall = report["overall"]
    assert overall["n"] == 4 and overall["positives"] == 2
    assert set(report["by_source"]) == {"demo", "asn"}
    for key in ("pr_auc", "roc_auc", "precision", "recall", "f1", "confusion_matrix"):
        assert key in overall
    assert "confusion matrix" in format_evaluation(report)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_evaluate_writes_misclassified_rows(
    tmp_path: Path, model: LoadedModel, suffix: str
) -> None:
    # a1 and a4 are clear vote calls and a2 is service news; labelling them the other way round
    # makes exactly those three rows mistakes, whatever the model's exact scores
    rows = [dict(row, label=str(int(i in (1, 2)))) for i, row in enumerate(ROWS)]
    source = write_csv(tmp_path / "gold.csv", rows)
    errors = tmp_path / f"errors{suffix}"
    report = evaluate_texts(model, source, errors=errors)
    if suffix == ".csv":
        with errors.open(encoding="utf-8") as handle:
            written = list(csv.DictReader(handle))
        scores = [float(row["score"]) for row in written]
    else:
        written = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
        scores = [row["score"] for row in written]
    assert report["errors_written"] == len(written) == 4
    kinds = [row["error"] for row in written]
    # false positives first, the most confident first within each kind
    assert kinds == ["false_positive", "false_positive", "false_negative", "false_negative"]
    assert {row["id"] for row in written[:2]} == {"a1", "a4"}
    assert scores[0] >= scores[1] and scores[2] <= scores[3]
    assert all(row["label"] == rows[int(row["id"][1]) - 1]["label"] for row in written)
    assert written[0]["explanation"]  # why the model was wrong, term by term
    confusion = report["overall"]["confusion_matrix"]
    assert confusion["fp"] + confusion["fn"] == len(written)


def test_evaluate_reports_operating_points(tmp_path: Path, model: LoadedModel) -> None:
    rows = [dict(row, label=str(int(i in (0, 3)))) for i, row in enumerate(ROWS)]
    report = evaluate_texts(model, write_csv(tmp_path / "gold.csv", rows))
    points = report["operating_points"]
    thresholds = [point["threshold"] for point in points]
    assert thresholds == sorted(thresholds) and round(model.threshold, 4) in thresholds
    at_model = points[thresholds.index(round(model.threshold, 4))]
    overall = report["overall"]
    assert at_model["precision"] == overall["precision"]
    assert at_model["recall"] == overall["recall"]
    assert (
        at_model["flagged"] == overall["confusion_matrix"]["tp"] + overall["confusion_matrix"]["fp"]
    )
    flagged = [point["flagged"] for point in points]
    assert flagged == sorted(flagged, reverse=True)  # a higher threshold never flags more
    choice = report["threshold_for_precision"]["0.9"]
    assert choice["reached"] and choice["precision"] >= 0.9
    text = format_evaluation(report)
    assert "operating points" in text and "precision >= 0.9" in text


def test_score_new_posts_stores_scores_once(sqlite_store: Store, model: LoadedModel) -> None:
    posts = [
        make_post(1, text="Ayo coblos nomor 1, #BersamaBE menang!"),
        make_post(2, text="Rapat koordinasi pelayanan publik di kantor kecamatan."),
        make_post(3, text=""),
    ]
    sqlite_store.write_stream(posts)
    counts = score_new_posts(sqlite_store, model, batch_size=2)
    assert counts["scored"] == 3 and counts["score_flags"] == 1
    assert score_new_posts(sqlite_store, model)["scored"] == 0
    stored = sqlite_store.get_post(posts[0].key)
    assert stored is not None
    latest = sqlite_store.latest_score(stored.pk, model.version)
    assert latest is not None and latest["label"] == "partisan"
    assert latest["model_version"] == model.version


def test_score_new_posts_does_not_file_a_score_under_a_text_edited_meanwhile(
    sqlite_store: Store, model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = make_post(1, text="Rapat koordinasi pelayanan publik di kantor kecamatan.")
    after = make_post(1, text="Ayo coblos nomor 1, #BersamaBE menang!")
    sqlite_store.write_stream([before, make_post(2)])
    read_batches = sqlite_store.iter_unscored

    def edited_while_scoring(
        model_version: str, batch_size: int = 1000
    ) -> Iterator[list[StoredPost]]:
        for batch in read_batches(model_version, batch_size):
            sqlite_store.write_batch([after])  # a collector stores an edit mid-scoring
            yield batch

    monkeypatch.setattr(sqlite_store, "iter_unscored", edited_while_scoring)
    assert score_new_posts(sqlite_store, model)["scored"] == 1  # only the unedited post
    stored = sqlite_store.get_post(after.key)
    assert stored is not None and stored.text == after.text
    assert sqlite_store.latest_score(stored.pk, model.version) is None
    monkeypatch.undo()
    assert score_new_posts(sqlite_store, model)["scored"] == 1  # the edit, scored on its text
    latest = sqlite_store.latest_score(stored.pk, model.version)
    assert latest is not None and latest["label"] == "partisan"
    assert latest["text_hash"] == stored.text_hash


def test_rescoring_the_queue_does_not_file_a_score_under_a_text_edited_meanwhile(
    sqlite_store: Store, model: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.models import rescore_pending
    from pipeline.queue import link_and_enqueue
    from tests.test_queue import asn_post, score_posts, setup_registry

    setup_registry(sqlite_store, tmp_path)
    sqlite_store.write_batch([asn_post(1)])
    score_posts(sqlite_store, {asn_post(1).key: 0.9}, model="old-model")
    assert link_and_enqueue(Config(), sqlite_store)["queued"] == 1
    edited = asn_post(1, text="Selamat pagi, upacara bendera di sekolah.")
    score = model.score

    def edited_while_scoring(*args: Any, **kwargs: Any) -> Any:
        sqlite_store.write_batch([edited])  # a collector stores an edit mid-scoring
        return score(*args, **kwargs)

    monkeypatch.setattr(model, "score", edited_while_scoring)
    assert rescore_pending(sqlite_store, model)["posts_scored"] == 0
    stored = sqlite_store.get_post(edited.key)
    assert stored is not None and stored.text == edited.text
    assert sqlite_store.latest_score(stored.pk, model.version) is None
    assert [post.key for batch in sqlite_store.iter_unscored(model.version) for post in batch] == [
        edited.key
    ]


def test_configured_threshold_labels_and_is_stored(sqlite_store: Store, model: LoadedModel) -> None:
    text = "Ayo coblos nomor 1, #BersamaBE menang!"
    [result] = model.score([text])
    assert result.label == "partisan" and model.threshold < result.score < 1.0
    # an authority's stricter operating point, just above this text's score
    strict = (result.score + 1.0) / 2
    config = Config(classifier=ClassifierConfig(threshold=strict))
    operating = load_scoring_model(config)
    assert operating.threshold == strict
    [again] = operating.score([text])
    assert again.score == result.score and again.label == "not_partisan"
    sqlite_store.write_stream([make_post(1, text=text)])
    score_new_posts(sqlite_store, operating)
    stored = sqlite_store.get_post(make_post(1).key)
    assert stored is not None
    latest = sqlite_store.latest_score(stored.pk, operating.version)
    assert latest is not None
    assert latest["label"] == "not_partisan" and latest["threshold"] == strict
    # model comparisons (netra retrain) keep the threshold stored with the model
    stored_threshold = load_scoring_model(config, operating_threshold=False).threshold
    assert stored_threshold == model.threshold


def test_cli_threshold_option(tmp_path: Path, model: LoadedModel) -> None:
    source = write_csv(tmp_path / "in.csv", ROWS)
    refused = netra("classify", str(source), "--threshold", "1.5", cwd=tmp_path)
    assert refused.returncode == 2 and "between 0 and 1" in refused.stderr
    done = netra("classify", str(source), "--threshold", "0.999999", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 4
    for row in rows:  # labelled at the given threshold, not the model's
        assert (row["label"] == "partisan") == (float(row["score"]) >= 0.999999)
    # the option mattered: a row the model's own threshold would call partisan is not
    assert any(model.threshold <= float(row["score"]) < 0.999999 for row in rows)
    assert "threshold 0.999999" in done.stderr


def test_score_new_posts_attaches_profiles_when_loaded_without(sqlite_store: Store) -> None:
    from classifiers.model import current_model_dir, load_model

    bare = load_model(current_model_dir(PROJECT_ROOT / "models"))
    sqlite_store.write_stream([make_post(1, text="Dukung Bambang Endang! #BersamaBE")])
    score_new_posts(sqlite_store, bare, config=Config())
    stored = sqlite_store.get_post(make_post(1).key)
    assert stored is not None
    latest = sqlite_store.latest_score(stored.pk)
    assert latest is not None and "H. Bambang Sutrisno" in latest["contestants"]


HELD_OUT = (
    "text,label\n"
    "Ayo coblos nomor 2 hari Rabu demi Sumber Makmur maju!,1\n"
    "Relawan siap menangkan paslon kita sampai TPS,1\n"
    "Dukung terus pasangan nomor 1 untuk kabupaten,1\n"
    "Jadwal posyandu bulan ini pindah ke balai desa,0\n"
    "Jalan provinsi ditutup sementara karena perbaikan,0\n"
    "Selamat hari guru untuk semua pendidik di kecamatan,0\n"
)


@dataclass
class Trained:
    """A model trained by `train_model` in a temporary models folder, with a held-out file."""

    config: Config
    corpus: Path
    held_out: Path
    directory: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Every 8th seed row trained once, measured on a small invented held-out file (`--dev`)."""
    root = tmp_path_factory.mktemp("trained")
    corpus = root / "corpus"
    corpus.mkdir()
    for path in sorted((PROJECT_ROOT / "classifiers" / "corpus").glob("*.csv")):
        with path.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        write_csv(corpus / path.name, rows[::8])
    held_out = root / "held_out.csv"
    held_out.write_text(HELD_OUT, encoding="utf-8")
    (root / "models").mkdir()
    config = Config(
        paths=PathsConfig(
            models_dir=root / "models", elections_dir=PROJECT_ROOT / "config" / "elections"
        )
    )
    directory = train_model(config, corpus_dir=corpus, dev_path=held_out)
    return Trained(config, corpus, held_out, directory)


def test_train_model_writes_a_loadable_model(trained: Trained, tmp_path: Path) -> None:
    config, corpus, directory = trained.config, trained.corpus, trained.directory
    models = config.paths.models_dir
    assert (models / "CURRENT").read_text().strip() == directory.name
    card = json.loads((directory / "card.json").read_text())
    assert card["data"]["rows"] > 300
    assert 0 < card["threshold"] < 1
    assert card["metrics"]["cross_validation"]["overall"]["pr_auc"] > 0.5
    assert card["metrics"]["held_out"]["overall"]["n"] == 6
    loaded = load_scoring_model(config)
    assert loaded.version == directory.name
    # an explicit output directory leaves CURRENT alone
    other = train_model(
        config, tmp_path / "elsewhere", corpus_dir=corpus, dev_path=trained.held_out
    )
    assert other == tmp_path / "elsewhere"
    assert (models / "CURRENT").read_text().strip() == directory.name
    again = json.loads((other / "card.json").read_text())
    assert again["metrics"] == card["metrics"]  # same data, same seed: same figures
    shutil.rmtree(other)


def test_a_held_out_file_is_never_trained_on(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main
    from pipeline.retrain import retrain

    card = json.loads((trained.directory / "card.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256(trained.held_out.read_bytes()).hexdigest()
    assert card["held_out_sha256"] == digest
    assert digest in (trained.directory / "card.md").read_text(encoding="utf-8")
    models = trained.config.paths.models_dir
    before = sorted(p.name for p in models.iterdir())
    # `netra retrain --add` with the held-out content under another name
    copy = tmp_path / "more_labels.csv"
    shutil.copyfile(trained.held_out, copy)
    with pytest.raises(InputFileError, match=r"more_labels\.csv: --add: same content"):
        retrain(trained.config, None, add_files=[copy], corpus_dir=trained.corpus)
    database, output = f"sqlite:///{tmp_path / 'netra.db'}", tmp_path / "out"
    settings = tmp_path / "netra.toml"
    settings.write_text(
        f'[database]\nurl = "{database}"\n'
        f'[paths]\nmodels_dir = "{models}"\noutput_dir = "{output}"\n',
        encoding="utf-8",
    )
    store = Store(database)
    store.upgrade()
    store.close()
    args = ["--config", str(settings), "--corpus", str(trained.corpus)]
    assert main(["retrain", *args, "--add", str(copy)]) == 2
    assert f"the held-out file held_out.csv of model {trained.directory.name}" in (
        capsys.readouterr().err
    )
    # a corpus holding it: refused by `netra train` and `netra retrain` alike
    corpus = tmp_path / "corpus"
    shutil.copytree(trained.corpus, corpus)
    shutil.copyfile(trained.held_out, corpus / "zz_extra.csv")
    for run in (
        lambda: train_model(trained.config, corpus_dir=corpus),
        lambda: retrain(trained.config, None, corpus_dir=corpus),
    ):
        with pytest.raises(InputFileError, match=r"zz_extra\.csv: corpus file: same content"):
            run()
    assert main(["train", *args[:2], "--corpus", str(corpus)]) == 2
    assert "held-out data is for measuring, never for training" in capsys.readouterr().err
    assert sorted(p.name for p in models.iterdir()) == before


# -- the real command line -----------------------------------------------------------------


def test_cli_classify_file_and_stdin(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ROWS)
    done = netra("classify", str(source), "--output", str(tmp_path / "out.jsonl"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 rows scored" in done.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4
    piped = netra("classify", "-", cwd=tmp_path, stdin='{"text": "coblos no 1 #BersamaBE"}\n')
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["label"] in ("partisan", "not_partisan")


def test_cli_missing_column_exits_2(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [{"isi": "halo"}])
    done = netra("classify", str(source), cwd=tmp_path)
    assert done.returncode == 2
    assert "found columns: isi" in done.stderr


def test_cli_evaluate_and_tampered_model(tmp_path: Path) -> None:
    rows = [dict(row, label=str(int(i in (0, 3)))) for i, row in enumerate(ROWS)]
    source = write_csv(tmp_path / "gold.csv", rows)
    done = netra("evaluate", str(source), "--errors", "wrong.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "PR-AUC" in done.stdout and "demo" in done.stdout
    assert "misclassified rows written to wrong.csv" in done.stdout
    assert (tmp_path / "wrong.csv").read_text(encoding="utf-8").startswith("id,text,source,label")
    from classifiers.model import current_model_dir

    copy = tmp_path / "model"
    shutil.copytree(current_model_dir(PROJECT_ROOT / "models"), copy)
    (copy / "card.md").write_text("edited\n")
    refused = netra("evaluate", str(source), "--model", str(copy), cwd=tmp_path)
    assert refused.returncode == 1
    assert "does not match the manifest" in refused.stderr


# -- inputs with a byte-order mark, outputs that must not destroy anything -------------------


@pytest.mark.parametrize(
    "content",
    [
        "\ufefftext,id\nAyo pilih nomor 1 #BersamaBE,7\n",
        '\ufeff{"text": "Ayo coblos", "id": "7"}\n',
    ],
)
def test_stdin_with_a_byte_order_mark(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: LoadedModel,
    content: str,
) -> None:
    # Windows tools put a BOM before the first column name (CSV) or the first brace (JSONL).
    monkeypatch.setattr("sys.stdin", io.StringIO(content))
    report = classify_file("-", None, model=model)
    out = capsys.readouterr().out
    assert report.rows == 1
    if content.startswith("\ufeff{"):
        assert json.loads(out)["id"] == "7"  # read as JSONL, not as a one-column CSV
    else:
        assert next(csv.DictReader(io.StringIO(out)))["id"] == "7"


def test_classify_refuses_to_write_over_its_input(tmp_path: Path, model: LoadedModel) -> None:
    source = write_csv(tmp_path / "in.csv", ROWS)
    before = source.read_bytes()
    (tmp_path / "link.csv").symlink_to(source)
    for output in (source, tmp_path / "link.csv", tmp_path / "." / "in.csv"):
        with pytest.raises(UsageError, match=r"would overwrite the input file"):
            classify_file(str(source), str(output), model=model)
    assert source.read_bytes() == before


def test_a_failed_classification_leaves_the_old_output_whole(
    tmp_path: Path, model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.classify.CHUNK", 2)  # the first rows are written before the error
    source = tmp_path / "in.jsonl"
    good = [json.dumps({"text": row["text"]}) for row in ROWS]
    source.write_text("\n".join([*good, "{rusak"]) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    output.write_text("earlier results\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"in.jsonl:5: invalid JSON"):
        classify_file(str(source), str(output), model=model)
    assert output.read_text(encoding="utf-8") == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_unwritable_outputs_exit_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    rows = [dict(row, label=str(int(i in (0, 3)))) for i, row in enumerate(ROWS)]
    source = write_csv(tmp_path / "gold.csv", rows)
    missing = tmp_path / "no-such-folder" / "x.csv"
    assert main(["classify", str(source), "--output", str(missing)]) == 2
    assert f"{missing}: cannot write" in capsys.readouterr().err
    assert main(["evaluate", str(source), "--errors", str(missing)]) == 2
    assert f"{missing}: cannot write" in capsys.readouterr().err
    before = source.read_bytes()
    assert main(["evaluate", str(source), "--errors", str(source)]) == 2
    assert "would overwrite the input file" in capsys.readouterr().err
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gold.csv"]


def test_train_refuses_a_corpus_file_with_the_held_out_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seed = sorted((PROJECT_ROOT / "classifiers" / "corpus").glob("*.csv"))[0]
    with seed.open(encoding="utf-8") as handle:
        write_csv(corpus / "part.csv", list(csv.DictReader(handle))[:40])
    held_out = tmp_path / "held_out.csv"
    shutil.copyfile(corpus / "part.csv", held_out)
    config = Config(
        paths=PathsConfig(
            models_dir=tmp_path / "models", elections_dir=PROJECT_ROOT / "config" / "elections"
        )
    )
    with pytest.raises(InputFileError, match=r"part\.csv: corpus file: same content .* --dev"):
        train_model(config, corpus_dir=corpus, dev_path=held_out)
    settings = tmp_path / "netra.toml"
    settings.write_text(f'[paths]\nmodels_dir = "{tmp_path / "models"}"\n', encoding="utf-8")
    args = ["train", "--config", str(settings), "--corpus", str(corpus), "--dev", str(held_out)]
    assert main(args) == 2
    assert "held-out data is for measuring, never for training" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()

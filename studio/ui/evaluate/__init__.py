"""The Evaluate tab: prompt, fine-tune or pre-train — which works on the person's own held-out data?

`tab` composes the tab; `heldout_box` opens and previews the held-out file; `candidates_box` picks what is
compared; `results_view` shows the recommendation, the candidates × metrics table and the plots; `plots` the
metric-vs-k, cost and confusion-matrix plots; `examples_view` the per-example answers.
"""

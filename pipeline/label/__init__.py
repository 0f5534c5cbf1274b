"""Labelling tools: a queue of the sentences worth labelling, a terminal labeller, and
marks for sentences the models were trained on.

Not a DVC stage: these are interactive tools around the train stage. A person's new
labels go into the label folder (``data.labels``) and ``dvc repro`` retrains.
"""

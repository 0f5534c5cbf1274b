"""Imported once by the engine's forkserver: the sentence splitter, loaded and warm.

Loading spaCy takes seconds and segmenting a report a twentieth of one, so a
process per report would spend almost all its time loading spaCy. Every
segmentation process is forked from the server that has run this module.
"""

from pipeline.core.sentences import split_sentences
from pipeline.segment import stage  # noqa: F401 - the task's own module, imported warm

split_sentences("The splitter is loaded. It is ready.")

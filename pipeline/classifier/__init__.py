"""QI and sentiment classifiers for inspection-report segments.

``data`` reads and validates labels, ``features`` turns segments and their context
into model inputs, ``model`` holds the two estimators, ``finetune`` adapts the
sentence encoder, ``evaluate`` measures them leave-one-report-out against two
baselines, ``persist`` saves and loads them safely, ``card`` writes the model card.
"""

QI_CODES: tuple[str, ...] = (
    "1.1", "2.1", "2.2", "3.1", "4.1", "5.1", "5.2", "5.3", "5.4", "6.1", "6.2",
    "6.3", "6.4", "7.1", "8.1", "9.1", "9.2", "9.3", "9.4", "10.1", "none",
)
SENTIMENTS: tuple[str, ...] = ("positive", "negative", "mixed", "neutral")


def qi_area(code: str) -> str:
    """The number before the dot (``"5.2"`` -> ``"5"``); ``none`` is its own area."""
    return code.split(".", 1)[0]

"""Classify support tickets as complaint, praise or request, in German and English.

Method: weighted keyword rules, no trained model. Tickets are short and formulaic, the two
languages share few words, and a rule set is auditable (a marketer can see why a ticket counted
as a complaint) and runs in the dbt build without a model artefact. Each class has a list of
(pattern, weight) cues matched case-insensitively on subject and text (the subject counts half,
it is often generic or misleading). The class with the highest total wins. Three refinements
keep obvious traps from flipping the result:

* negated or softened complaint words ("kein Problem", "nicht schlecht", "can't fault it")
  are praise cues and are removed before the complaint cues are counted;
* "after the trouble last time ..." style sentences only count their positive half;
* a ticket with no cue at all is a request (the most common neutral contact), and a question
  mark is weak evidence for a request, because complaints are often phrased as questions too.

Accuracy against the demo ground truth: ``benchmarks/ticket_classifier_accuracy.py``.
"""

from __future__ import annotations

import re

LABELS: tuple[str, ...] = ("complaint", "praise", "request")

# Praise phrases that contain complaint words; matched and blanked out first.
_SOFTENED: tuple[str, ...] = (
    r"kein problem", r"nicht schlecht", r"nicht meckern", r"nothing was a problem",
    r"not bad", r"can'?t fault", r"nach dem ärger[^.!?]*", r"after the trouble[^.!?]*",
    r"reklamation wurde[^.!?]*schnell", r"my complaint was handled[^.!?]*",
)

_CUES: dict[str, tuple[tuple[str, float], ...]] = {
    "complaint": (
        (r"beschwerde|reklamation|complaint|refund|rückerstattung|erstatten", 2.0),
        (r"ärgerlich|annoying|enttäuscht|disappointed|unglaublich|unhappy|unfreundlich|rude", 2.0),
        (r"kaputt|broke|beschädigt|damaged|loch\b|hole\b|aufgelöst|fehlte|missing", 2.0),
        (r"immer noch nicht|still hasn'?t|noch nicht angekommen|warte seit|waiting over", 2.0),
        (r"falsche|wrong (size|item|colour)|wrong\b", 1.5),
        (r"zweimal abgebucht|charged twice|vertröstet|fobbed|niemand geht|nobody answers", 2.5),
        (r"schon wieder|yet again|dritte mal|third time|verschoben|postponed", 1.5),
        (r"nicht akzeptiert|refused|geschlossen|closed today", 2.0),
        (r"obwohl|although|anderer preis|different price|so geht man nicht|not how you treat",
         1.5),
        (r"immer noch werbung|still getting adverts|keine antwort", 2.0),
        (r"!!", 1.0),
    ),
    "praise": (
        (r"danke|thank|thanks\b|lob\b|compliments?\b", 1.5),
        (r"super|hervorragend|excellent|perfekt|perfect|toll|great|top\b|begeistert|impressed",
         1.5),
        (r"zufrieden|happy|geholfen|helpful|weiter so|keep it up|freundlich|friendly", 1.5),
        (r"kein problem|nicht schlecht|nicht meckern|nothing was a problem|not bad|can'?t fault",
         2.5),
        (r"problemlos|painless|bestens|perfect condition|liebt|loves?\b", 1.5),
        (r"nach dem ärger|after the trouble", 2.0),
    ),
    "request": (
        (r"können sie|könnten sie|could you|can you|can i|kann ich|wie kann|how do i|how long",
         1.5),
        (r"bitte schicken|please send|bitte löschen|please remove|möchte|would like|i'?d like",
         1.5),
        (r"ändern|update|aktualisieren|zurücksetzen|reset|neue kundenkarte|new loyalty card",
         1.5),
        (r"gibt es|is this item|haben sie|do you|bieten sie|ist eine lieferung|will the", 1.5),
        (r"wann|when\b|wo es|where it|bestätigung|confirmation|kopie|copy", 1.0),
        (r"frage|anfrage|question|enquiry|adressänderung|change of address", 1.0),
        (r"\?", 0.5),
    ),
}
# Sarcastic praise words in a complaint ("Super Service – schon wieder ...") are outweighed by
# the complaint cues, so no separate sarcasm rule is needed.

_COMPILED = {
    label: tuple((re.compile(pattern, re.IGNORECASE), weight) for pattern, weight in cues)
    for label, cues in _CUES.items()
}
_SOFTENED_RE = re.compile("|".join(_SOFTENED), re.IGNORECASE)
_SUBJECT_WEIGHT = 0.5


def scores(subject: str | None, text: str | None) -> dict[str, float]:
    """Evidence per class: summed cue weights of text plus half of the subject's."""
    result = dict.fromkeys(LABELS, 0.0)
    for part, factor in ((text or "", 1.0), (subject or "", _SUBJECT_WEIGHT)):
        hardened = _SOFTENED_RE.sub(" ", part)
        for label, cues in _COMPILED.items():
            # complaint cues only see the text without its softened phrases
            searched = hardened if label == "complaint" else part
            result[label] += factor * sum(w for cue, w in cues if cue.search(searched))
    return result


def classify(subject: str | None, text: str | None) -> str:
    """complaint, praise or request; a ticket without any cue is a request."""
    found = scores(subject, text)
    best = max(LABELS, key=lambda label: (found[label], label == "request"))
    return best if found[best] > 0 else "request"


def language(text: str | None) -> str:
    """de or en, from a handful of frequent function words (for reporting only)."""
    words = re.findall(r"[a-zäöüß']+", (text or "").lower())
    german = sum(w in {"ich", "und", "die", "der", "das", "nicht", "sie", "mit", "ist", "bitte"}
                 for w in words)
    english = sum(w in {"i", "and", "the", "not", "you", "with", "is", "my", "please", "it"}
                  for w in words)
    return "de" if german >= english else "en"

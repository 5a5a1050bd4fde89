"""Support-ticket subjects and texts (German and English) for the three labels.

Phrasing is deliberately varied: sarcasm, complaints phrased as questions, praise with negative
words ("kein Problem", "after the trouble last time"), misleading subjects. A keyword classifier
should do well but not perfectly, which is what the demo needs to show.
"""

from __future__ import annotations

import random

LABELS = ("complaint", "praise", "request")
LABEL_WEIGHTS = (0.45, 0.15, 0.40)

_CORES: dict[tuple[str, str], tuple[str, ...]] = {
    ("de", "complaint"): (
        "Meine Bestellung ist nach drei Wochen immer noch nicht angekommen.",
        "Die Jacke hatte nach dem ersten Waschen ein Loch. Das ist wirklich ärgerlich.",
        "Mir wurde der Betrag zweimal abgebucht. Bitte erstatten Sie das umgehend.",
        "Ich bin sehr enttäuscht von der Qualität, das Gerät war nach einer Woche kaputt.",
        "Ihr Kundenservice hat mich jetzt dreimal vertröstet.",
        "Warum bekomme ich immer noch Werbung, obwohl ich mich abgemeldet habe?",
        "Das Paket kam beschädigt an und die Hälfte fehlte.",
        "Falsche Größe, falsche Farbe und keine Antwort auf meine Mails.",
        "Der Gutschein wurde an der Kasse nicht akzeptiert, obwohl er noch gültig war.",
        "Super Service – schon wieder die falsche Ware geliefert.",
        "Ich warte seit über einem Monat auf meine Rückerstattung.",
        "Die Filiale in {city} war heute geschlossen, laut Website hätte sie offen sein müssen.",
        "Das ist jetzt das dritte Mal, dass die Lieferung verschoben wird.",
        "Die Verkäuferin an der Kasse war ausgesprochen unfreundlich.",
        "Wieso steht auf der Rechnung ein anderer Preis als im Prospekt?",
        "So geht man nicht mit Stammkunden um.",
        "Die Schuhe haben sich nach zwei Tagen aufgelöst. Unglaublich.",
        "Seit Tagen versuche ich Sie zu erreichen, niemand geht ans Telefon.",
    ),
    ("de", "praise"): (
        "Vielen Dank für die schnelle Lieferung!",
        "Ich wollte einfach mal Danke sagen – die Beratung in der Filiale war super.",
        "Die Qualität der Schuhe ist hervorragend, ich bin sehr zufrieden.",
        "Nicht schlecht! Hätte nicht gedacht, dass der Umtausch so problemlos klappt.",
        "Ihre Mitarbeiterin am Telefon hat mir sehr geholfen, das war wirklich kein Problem.",
        "Top, alles bestens angekommen.",
        "Nach dem Ärger beim letzten Mal hat diesmal alles perfekt funktioniert.",
        "Ein großes Lob an das Team in {city}.",
        "Ich bin seit Jahren Kunde und immer wieder begeistert.",
        "Die Reklamation wurde so schnell erledigt, da kann man nicht meckern.",
        "Freundlich, kompetent, schnell – weiter so!",
        "Meine Tochter liebt das Geschenk, vielen Dank für die tolle Verpackung.",
    ),
    ("de", "request"): (
        "Können Sie mir bitte sagen, wann meine Bestellung geliefert wird?",
        "Ich bin umgezogen und möchte meine Adresse ändern lassen.",
        "Wie kann ich mein Passwort zurücksetzen?",
        "Bitte schicken Sie mir eine Rechnungskopie für meine letzte Bestellung.",
        "Gibt es den Artikel auch in Größe M?",
        "Ich hätte gerne eine neue Kundenkarte, meine alte ist verloren gegangen.",
        "Könnten Sie meine E-Mail-Adresse im Kundenkonto aktualisieren?",
        "Wie lange ist der Gutschein noch gültig?",
        "Ich möchte den Newsletter nur noch einmal im Monat bekommen.",
        "Ist eine Lieferung nach Österreich möglich?",
        "Mein Paket ist noch nicht da – können Sie nachsehen, wo es gerade ist?",
        "Bitte löschen Sie meine Telefonnummer aus Ihrem System.",
        "Kann ich die Ware auch in der Filiale umtauschen?",
        "Haben Sie die Kaffeemaschine bald wieder auf Lager?",
        "Ich brauche eine Bestätigung meiner Bestellung für meinen Arbeitgeber.",
        "Bieten Sie auch Geschenkgutscheine an?",
    ),
    ("en", "complaint"): (
        "My order still hasn't arrived after three weeks.",
        "The jacket had a hole after the first wash. Really annoying.",
        "I was charged twice for the same order, please refund it immediately.",
        "Very disappointed with the quality, it broke after a week.",
        "Your customer service has fobbed me off three times now.",
        "Why am I still getting adverts when I unsubscribed?",
        "The parcel arrived damaged and half of it was missing.",
        "Wrong size, wrong colour, and nobody answers my emails.",
        "The coupon was refused at the till although it was still valid.",
        "Great service – wrong item delivered yet again.",
        "I have been waiting over a month for my refund.",
        "The store in {city} was closed today although the website said it was open.",
        "That's the third time the delivery has been postponed.",
        "The cashier was extremely rude to me.",
        "How come the invoice shows a different price than the leaflet?",
        "This is not how you treat loyal customers.",
    ),
    ("en", "praise"): (
        "Thank you for the quick delivery!",
        "Just wanted to say thanks – the advice in store was excellent.",
        "The shoes are excellent quality, very happy.",
        "Not bad at all! Didn't expect the exchange to be so painless.",
        "Your colleague on the phone was really helpful, nothing was a problem.",
        "Everything arrived in perfect condition.",
        "After the trouble last time, this time everything worked perfectly.",
        "Big compliments to the team in {city}.",
        "Been a customer for years and still impressed.",
        "My complaint was handled so fast, can't fault it.",
        "Friendly, competent, fast – keep it up!",
    ),
    ("en", "request"): (
        "Could you tell me when my order will be delivered?",
        "I have moved house and need to update my address.",
        "How do I reset my password?",
        "Please send me a copy of the invoice for my last order.",
        "Is this item also available in size M?",
        "I need a new loyalty card, I lost my old one.",
        "Could you update the email address on my account?",
        "How long is the voucher valid for?",
        "I'd like to receive the newsletter only once a month.",
        "Do you deliver to Ireland?",
        "My parcel isn't here yet – could you check where it is?",
        "Please remove my phone number from your system.",
        "Can I exchange items in store?",
        "Will the coffee machine be back in stock soon?",
        "Do you sell gift vouchers?",
    ),
}

_SUBJECTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("de", "complaint"): ("Beschwerde", "Reklamation", "Ärgerlich!!", "Bestellung {order}",
                          "Rückerstattung", "Lieferung"),
    ("de", "praise"): ("Danke!", "Lob", "Kurzes Feedback", "Bestellung {order}"),
    ("de", "request"): ("Frage", "Anfrage", "Adressänderung", "Bestellung {order}",
                        "Kundenkonto", "Frage zur Lieferung"),
    ("en", "complaint"): ("Complaint", "Refund", "Very unhappy", "Order {order}", "Delivery"),
    ("en", "praise"): ("Thank you", "Feedback", "Great service", "Order {order}"),
    ("en", "request"): ("Question", "Enquiry", "Change of address", "Order {order}",
                        "My account", "Delivery question"),
}
_NEUTRAL_SUBJECTS = {"de": ("Ihre Nachricht", "Re: Ihre Nachricht", "Kundenservice", ""),
                     "en": ("Your message", "Re: your message", "Customer service", "")}
_GREETINGS = {"de": ("Hallo,", "Sehr geehrte Damen und Herren,", "Guten Tag,", "Hi,", ""),
              "en": ("Hello,", "Dear Sir or Madam,", "Hi,", "Hi there,", "")}
_CLOSINGS = {"de": ("Mit freundlichen Grüßen", "Viele Grüße", "Danke im Voraus", "LG", ""),
             "en": ("Kind regards", "Best wishes", "Thanks in advance", "Cheers", "")}
_AGENT_PREFIX = {("de", "m"): ("Kunde ruft an: ", "Anruf: ", "Kunde meldet sich: ", "Tel.: ", ""),
                 ("de", "f"): ("Kundin ruft an: ", "Anruf: ", "Kundin meldet sich: ", "Tel.: ",
                               ""),
                 ("en", "m"): ("Customer called: ", "Call: ", "Caller says: ", ""),
                 ("en", "f"): ("Customer called: ", "Call: ", "Caller says: ", "")}
# Sentences that soften or blur the label without changing it.
_EXTRAS = {
    "de": ("Bestellnummer {order}.", "Ich habe bereits letzte Woche angerufen.",
           "Es geht um einen Artikel aus dem Bereich {group}.", "Danke trotzdem.",
           "Könnten Sie sich das bitte ansehen?"),
    "en": ("Order number {order}.", "I already called last week.",
           "It's about an item from your {group} range.", "Thanks anyway.",
           "Could you please look into it?"),
}
_OFFER_NOTE = {
    "de": {"accepted": "Angebot {offer} vorgestellt – Kunde nimmt an.",
           "declined": "Angebot {offer} angeboten, kein Interesse."},
    "en": {"accepted": "Offered {offer} – customer accepted.",
           "declined": "Mentioned offer {offer}, customer not interested."},
}
_DNC_NOTE = {"de": ("Bitte rufen Sie mich nicht mehr an.", "Keine Werbung mehr, bitte!",
                    "Kunde wünscht keinen Kontakt mehr."),
             "en": ("Please stop contacting me.", "No more marketing, please!",
                    "Customer does not want to be contacted.")}


def ticket_text(rng: random.Random, lang: str, gender: str, label: str, channel: str, city: str,
                group: str, offer: tuple[str, str] | None, do_not_contact: bool
                ) -> tuple[str, str]:
    """Subject and body of one ticket; ``offer`` is (offer_id, outcome) for call-centre offers."""
    order = f"{rng.randint(1_000_000, 9_999_999)}"
    if rng.random() < 0.25:
        subject = rng.choice(_NEUTRAL_SUBJECTS[lang])
    else:
        subject = rng.choice(_SUBJECTS[(lang, label)])
    subject = subject.format(order=order)
    core = rng.choice(_CORES[(lang, label)]).format(city=city)
    parts = [core]
    if rng.random() < 0.35:
        extra = rng.choice(_EXTRAS[lang]).format(order=order, group=group)
        parts.insert(rng.randint(0, 1), extra)
    if rng.random() < 0.12:  # a second statement of the same intent
        second = rng.choice(_CORES[(lang, label)]).format(city=city)
        if second != core:
            parts.append(second)
    if do_not_contact:
        parts.append(rng.choice(_DNC_NOTE[lang]))
    body = " ".join(parts)
    if channel == "phone":
        body = rng.choice(_AGENT_PREFIX[(lang, gender)]) + body
        if offer:
            body += " " + _OFFER_NOTE[lang][offer[1]].format(offer=offer[0])
    elif channel == "email":
        greeting, closing = rng.choice(_GREETINGS[lang]), rng.choice(_CLOSINGS[lang])
        body = "\n".join(p for p in (greeting, body, closing) if p)
    elif rng.random() < 0.5:  # chat: short and lower-case-ish
        body = body[:1].lower() + body[1:]
    return subject, body

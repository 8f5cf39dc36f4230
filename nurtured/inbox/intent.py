"""What a lead's reply means for sales: interested, a question, later, a referral, not
interested, or something else. Pure: the new text of a reply (as ``inbox.extract``
gives it), the lead's language when known, today's date and the sender's address in;
an ``Intent`` out.

Phrases are matched on folded text (lower case, accents removed) in EN, DE, FR, ES, IT,
NL and PT, whatever ``language`` says (replies mix languages); ``language`` only settles
month words that mean something else elsewhere (see ``inbox.when``). The rules, first
match wins, in the order that gets the common mixed replies right:

1. referral with an address: a hand-off phrase ("talk to", "wenden Sie sich an",
   "contactez") and an address that is not the sender's;
2. referral without one: a hand-off phrase and a third party (a colleague or a role
   word, or a name after the phrase);
3. not interested ("no thanks", "kein Interesse", "no me interesa"), which beats every
   interest word ("not interested in a demo"); but "not interested right now" or one
   with a time to come back is later, unless it says "at all" or "never";
4. later: a deferral ("not now", "get back to me", "später", "plus tard"), or a time to
   come back in a reply without interest words ("en septembre"), even in a question, or
   more than 30 days ahead in one that asks for nothing to be sent now ("happy to talk
   after the summer", but not "send me a quote, we buy in Q3");
5. interested: a call, a meeting, a demo, pricing, a quote, "let's talk", a bare "yes";
6. question: a "?" or a sentence opening with a question word;
7. other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from nurtured.when import fold_chars, fold_text, later_date

__all__ = ["Intent", "IntentKind", "classify_intent"]

NEAR = timedelta(days=30)  # a call asked for further out than this is a later
IntentKind = Literal["interested", "question", "later", "referral", "not_interested", "other"]


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    later_until: date | None = None  # kind "later": when to come back, when the text says
    referral: str | None = None  # kind "referral": the address named, lower-cased
    referral_name: str | None = None  # kind "referral": the person's name, as written


def _words(words: str) -> frozenset[str]:
    return frozenset(words.split("|"))


def _phrases(*groups: str) -> re.Pattern[str]:
    """One pattern from "|"-separated phrase lists (regex, spaces kept), whole words only."""
    return re.compile(r"(?<!\w)(?:" + "|".join(g.strip("|") for g in groups) + r")(?!\w)")


_REFERRAL = _phrases(
    r"talk (to|with)(?! (me|us|you)\b)|speak (to|with)(?! (me|us|you)\b)|reach out to|"
    r"get in touch with|contact(?! (me|us|you)\b)|write to|e-?mail (him|her|them)|"
    r"ask (my|our|him|her|them)|forward(ed|ing)? (it |this |your (e-?mail|message) )?to|"
    r"cc'?(d|ed|ing)|cc-ing|copied|copying|(right|better|best) (person|contact)|"
    r"point of contact|(send|forward) (it|this|that|them|everything) to (my|our)|"
    r"is (the one )?responsible|is in charge|handles (this|that|these|it|purchasing)",
    r"wenden sie sich (bitte )?an|kontaktieren sie(?! (mich|uns))|melden sie sich (bitte )?bei|"
    r"schreiben sie (bitte )?an|sprechen sie (bitte )?mit|ansprechpartner\w*|"
    r"ist (dafur |hierfur )?zustandig|kolleg\w*|weitergeleitet|in kopie|in cc",
    r"contactez(?![- ](moi|nous))|adressez-vous a|voyez avec|ecrivez a|collegue|"
    r"est (le |la )?responsable|s'occupe (de|des|du)|interlocut\w*|en copie|transmis",
    r"contacte con|contacta con|pongase en contacto con|hable con|habla con|escriba a|"
    r"companer[oa]|colega|es (el |la )?responsable|se ocupa|encargad[oa]|en copia|reenviado",
    r"contatti|contattate|contattare|si rivolga a|rivolgetevi a|rivolgersi a|scriva a|"
    r"parli con|collega|e (il |la )?responsabile|si occupa|referente|in copia|inoltrat\w*",
    r"neem (dan )?contact op met|contact opnemen met|spreek met|mail naar|"
    r"is verantwoordelijk|gaat (hier )?over|aanspreekpunt|doorgestuurd",
    r"entre em contato com|contate|fale com|escreva para|e (o |a )?responsavel|"
    r"cuida (disso|de)|em copia|encaminhei",
)
_THIRD_PARTY = _phrases(
    r"colleague|co-?worker|kolleg\w*|collegue|companer[oa]|colega|collega|collaborat\w*|"
    r"ansprechpartner\w*|interlocut\w*|referente|aanspreekpunt|"
    r"c[etfoim]o|vp|head of \w+|manager|director|directora?|directeur|directrice|diretora?|"
    r"direttore|direttrice|purchasing|procurement|buyer|einkauf\w*|geschaftsfuhr\w*|"
    r"leiter\w*|chef|acheteu\w+|achats|jefe|jefa|gerente|compras?|comprador\w*|acquisti|"
    r"responsabile|inkoop|inkoper|team|department|abteilung|service \w+|departamento|"
    r"ufficio|afdeling|setor|boss|partner|assistant|assistent\w*"
)
_NOT_INTERESTED = _phrases(
    r"not interested|no interest|no,? thanks?( you)?|no thank you|not for us|not a fit|"
    r"(signed|went|gone|decided to go) with (a|another|a different|one of your) \w+|"
    r"chose (another|a different|a competitor)|"
    r"(don't|do not|doesn't|does not|won't) (need|want) (a|an|the|any|this|that|it|your|such)|"
    r"no need (for|of)|"
    r"(we|i) (are|am|'re|'m) not looking|not relevant|pass on this|we'll pass|i'll pass",
    r"kein(en)? interesse|nicht interessiert|interessiert (uns|mich) nicht|nein,? danke|"
    r"kein(en)? bedarf|brauchen (wir )?(das )?nicht|brauchen kein\w*|nicht relevant",
    r"pas interess\w*|ne (nous |m')interesse pas|non,? merci|pas besoin|aucun interet|"
    r"ne sommes pas interess\w*",
    r"no (me|nos) interesa|no estoy interesad[oa]|no estamos interesad[oa]s|no,? gracias|"
    r"sin interes|no necesitamos",
    r"non (mi|ci) interessa|non sono interessat[oa]|non siamo interessati|no,? grazie|"
    r"non abbiamo bisogno|non ci serve",
    r"geen interesse|niet geinteresseerd|nee,? dank (je|u)( wel)?|geen behoefte|niet nodig",
    r"nao tenho interesse|nao temos interesse|nao (estou|estamos) interessad[oa]s?|"
    r"sem interesse|nao,? obrigad[oa]|nao precisamos",
)
_HARD_NO = _phrases(
    r"at all|never|absolutely not|definitely not|uberhaupt|niemals|gar kein\w*|pas du tout|"
    r"jamais|en absoluto|nunca|per niente|affatto|helemaal (niet|geen)|nooit|de jeito nenhum|"
    r"de forma alguma|nenhum"
)
_FOR_NOW = _phrases(
    r"right now|at the moment|at this time|for now|at present|"
    r"derzeit|momentan|aktuell|im moment|zurzeit|zur zeit|"
    r"pour le moment|actuellement|en ce moment|pour l'instant|"
    r"por ahora|de momento|en este momento|actualmente|por el momento|"
    r"al momento|per ora|in questo momento|attualmente|per il momento|"
    r"momenteel|op dit moment|voorlopig|"
    r"no momento|por enquanto|neste momento|atualmente"
)
_LATER = _phrases(
    r"not (right )?now|not at the moment|not at this time|not this (year|quarter|month)|"
    r"not ready( yet)?|later(?! (today|this (morning|afternoon|evening|week)|in the day))|"
    r"get back to (me|us)|come back to (me|us)|reach out (again|later)|"
    r"contact (me|us) again|follow up (later|again)|circle back|check back|"
    r"touch base (again|later)|try (me|us) again|revisit|too early|too soon|ask (me|us) again",
    r"nicht jetzt|jetzt nicht|(momentan|derzeit|aktuell|zurzeit|im moment) nicht|"
    r"noch nicht so weit|spater(?! (heute|am tag|diese woche))|spaeter|"
    r"melden sie sich (gerne )?(wieder|nochmal|noch einmal|erneut)|"
    r"kommen sie (gerne )?(wieder|nochmal|noch einmal)|zu fruh",
    r"pas maintenant|pas pour le moment|pas pour l'instant|pas encore prets?|"
    r"plus tard(?! dans la journee)|recontactez[- ](moi|nous)|revenez vers (moi|nous)|"
    r"relancez[- ](moi|nous)|trop tot",
    r"ahora no|no por ahora|de momento no|por ahora no|mas tarde|mas adelante|"
    r"vuelva a contactar\w*|vuelve a contactar\w*|contacteme (de nuevo|otra vez)|"
    r"escribame (de nuevo|otra vez)|demasiado pronto",
    r"non ora|non adesso|per ora no|al momento no|piu tardi|piu avanti|ricontatta\w*|"
    r"risentiamoci|troppo presto",
    r"nu niet|niet nu|op dit moment niet|momenteel niet|neem .{0,30}(weer|opnieuw) contact op|"
    r"kom(t)? (er )?later (op )?terug|te vroeg",
    r"agora nao|no momento nao|por enquanto nao|mais tarde|mais para frente|mais adiante|"
    r"volte a (entrar em contato|falar)|entre em contato (novamente|de novo)|cedo demais|"
    r"muito cedo",
)
_INTERESTED = _phrases(
    r"(set up|schedule|book|arrange|have|hop on|jump on|organi[sz]e|plan) (a |an |the )?"
    r"((quick|short|brief|first) )?(call|meeting|demo|chat)|call me|"
    r"(i|we)('ll| will) (call|phone|ring) you|(i|we)('ll| will) give you a (call|ring)|"
    r"give (me|us) a (call|ring)|"
    r"let'?s (talk|chat|meet|speak|connect)|happy to (talk|chat|meet|speak|hear more)|"
    r"(like|love) to (see|learn|talk|hear|know|get|schedule|try|book)|(i|we)('m|'re| am| are) "
    r"interested|interested in|sounds (good|great|interesting)|tell me more|"
    r"more (info|information|details)|quote|pricing|prices?|costs?|how much|demo|trial|"
    r"when (can|could) we|are you (available|free)|what time works|meeting|appointment",
    r"termin\w*|telefonat|anruf|rufen sie (mich|uns) an|gesprach|lass(en sie)? uns|demo|"
    r"vorfuhrung|angebot|preis\w*|kosten|was kostet|interessiert|interesse|"
    r"gerne (mehr|ein|einen|eine)|mehr (erfahren|informationen|infos)|klingt (gut|interessant)",
    r"un appel|appelez[- ](moi|nous)|rendez-vous|rdv|une reunion|demonstration|devis|"
    r"tarifs?|prix|combien|interess(e|ee|es|ees)|discuter|echanger|en savoir plus|"
    r"plus d'informations|volontiers",
    r"una llamada|llameme|llamame|reunion|una cita|demostracion|presupuesto|precios?|"
    r"cotizacion|cuanto cuesta|interesad[oa]s?|me interesa|nos interesa|hablar|mas informacion",
    r"una chiamata|chiamatemi|mi chiami|telefonata|riunione|incontro|appuntamento|"
    r"dimostrazione|preventivo|prezz[oi]|listino|quanto costa|interessat[oaie]|mi interessa|"
    r"ci interessa|sentirci|parlarne|maggiori informazioni|piu informazioni",
    r"een gesprek|gesprek|bellen|bel me|bel mij|afspraak|offerte|prijs|prijzen|wat kost|"
    r"geinteresseerd|meer informatie|klinkt (goed|interessant)",
    r"uma chamada|ligacao|ligue-me|me ligue|reuniao|demonstracao|orcamento|proposta|precos?|"
    r"quanto custa|interessad[oa]s?|tenho interesse|temos interesse|conversar|mais informacoes",
)
_WANTS_NOW = _phrases(
    r"send (me|us)|quote|pricing|prices?|costs?|how much|schicken sie|senden sie|angebot|"
    r"preis\w*|was kostet|envoyez|devis|tarifs?|prix|combien|envie(me|nos)|presupuesto|"
    r"precios?|cuanto cuesta|cotizacion|mandatemi|inviatemi|preventivo|prezz[oi]|quanto costa|"
    r"stuur|offerte|prijs|prijzen|wat kost|envie-me|me envie|orcamento|precos?|quanto custa"
)
_YES = re.compile(
    r"^(yes|yeah|yep|sure|absolutely|definitely|of course|ja|gerne|gern|klar|oui|volontiers|"
    r"bien sur|avec plaisir|si|claro|por supuesto|certo|certamente|volentieri|graag|zeker|"
    r"sim|com certeza)(?!\w)"
)
_QUESTION_START = _phrases(
    r"how (do|does|can|could|much|many|long|would|is|are)|what (is|are|does|do|about|if)|"
    r"why|when (is|are|can|will|do|does|would)|where|which|who|do you|does it|is it|is there|"
    r"are you|are there|can you|could you|can i|would it|will it",
    r"wie (viel|lange|funktioniert|kann|konnen|ist|sind|sieht)|was (kostet|ist|sind|passiert)|"
    r"wann|warum|wieso|gibt es|konnen sie|kann man|haben sie|ist es|bieten sie",
    r"comment|pourquoi|quand|est-ce que|pouvez-vous|quel(le)?s? (est|sont)|y a-t-il",
    r"como (funciona|se)|que (es|pasa|incluye)|cuando|por que|donde|cual|pueden?|hay",
    r"come (funziona|si)|cosa|quando|perche|dove|quale|puo|c'e",
    r"hoe|wat (is|kost|zijn)|wanneer|waarom|waar|welke|kunt u|is het",
    r"como (funciona|se)|o que|quando|por que|onde|qual|podem?|existe",
)
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_NAME_WORD = r"[A-Z](?:[a-z]|'[A-Z])[\w'-]*"
_PARTICLE = r"(?:van|von|de|da|di|del|der|den|dos|das|du|le|la|ten|ter)"
_NAME = rf"{_NAME_WORD}(?:\s+(?:{_PARTICLE}\s+)*{_NAME_WORD}){{0,4}}"
_NAME_BEFORE_ADDRESS = re.compile(
    rf"(?P<name>{_NAME})[\s,:;<(\[\"'-]*(?:(?i:at|unter|a|en|op|em|via|bei|an)\s+)?"
    r"(?:mailto:)?<?(?P<address>" + _ADDRESS.pattern + ")"
)
_NAME_AFTER_CUE = re.compile(
    r"(?<!\w)(?i:colleague|co-?worker|kollegin|kollegen|kollege|collegue|companera|companero|colega|collega|"
    r"talk to|speak (?:to|with)|contact|ask|an|contactez|con|met|com|a)(?!\w)"
    r"(?:\s+(?i:our|my|the|unsere[nmr]?|meine[nmr]?|herrn?|frau|notre|mon|ma|mi|nuestr[oa]|"
    r"il|la|mio|mia|nostr[oa]|onze|mijn|o|meu|minha|nosso|nossa|mr\.?|mrs\.?|ms\.?|dr\.?|"
    r"m\.|mme|sr\.?|sra\.?|sig\.?|sig\.ra|dhr\.?|mevr\.?))*"
    rf"\s*[,:]?\s+(?P<name>{_NAME})"
)
_NOT_NAMES = _words(
    "please|contact|talk|speak|reach|ask|email|mail|write|call|hi|hello|thanks|dear|our|my|"
    "the|he|she|they|bitte|kontaktieren|wenden|sprechen|schreiben|sie|ihr|ihre|unser|unsere|"
    "contactez|adressez|veuillez|merci|notre|mon|ma|contacte|contacta|hable|escriba|nuestro|"
    "nuestra|mi|gracias|contatti|scriva|parli|il|la|nostro|nostra|grazie|neem|bel|onze|mijn|"
    "bedankt|entre|fale|escreva|nosso|nossa|meu|minha|obrigado|obrigada|and|or|und|oder|et|"
    "ou|y|o|e|en|of|mr|mrs|ms|miss|dr|prof|herr|herrn|frau|mme|mlle|monsieur|madame|sr|sra|"
    "srta|don|sig|signor|signora|dott|dhr|mevr|mevrouw|meneer|colleague|kollege|kollegin|"
    "cc|hallo|bonjour|hola|ciao|olá|ola|best|regards|gruesse|grusse|cordialement|saludos|"
    "saluti|groeten|abraços|abracos"
)


def _name(raw: str | None) -> str | None:
    """``raw`` without leading words that are no part of a name ("Contact", "Frau")."""
    if raw is None:
        return None
    words = raw.split()
    while words and words[0].lower().rstrip(".") in _NOT_NAMES:
        words.pop(0)
    while words and re.fullmatch(_PARTICLE, words[-1]):
        words.pop()
    return " ".join(words) or None


def _referral(text: str, sender: str) -> tuple[str | None, str | None]:
    """The address named in ``text`` that is not ``sender``'s, and the name next to it."""
    plain = fold_chars(text, lower=False)
    own = sender.strip().strip("<>").lower()
    for m in _ADDRESS.finditer(plain):
        address = text[m.start() : m.end()].lower()
        if address == own:
            continue
        for named in _NAME_BEFORE_ADDRESS.finditer(plain, 0, m.end()):
            if named.end("address") == m.end():
                return address, _name(text[named.start("name") : named.end("name")])
        return address, _name_after_cue(text, plain)
    return None, _name_after_cue(text, plain)


def _name_after_cue(text: str, plain: str) -> str | None:
    for m in _NAME_AFTER_CUE.finditer(plain):
        name = _name(text[m.start("name") : m.end("name")])
        if name is not None:
            return name
    return None


def _is_question(text: str) -> bool:
    if "?" in text or "¿" in text:
        return True
    sentences = re.split(r"[.!\n]+", text)
    return any(_QUESTION_START.match(fold_text(s)) for s in sentences)


def classify_intent(text: str, language: str | None, today: date, sender: str = "") -> Intent:
    """What the reply ``text`` from ``sender`` means; ``today`` dates "in March"."""
    folded = fold_text(text)[:20_000]
    if not folded:
        return Intent("other")
    if _REFERRAL.search(folded):
        address, name = _referral(text[:20_000], sender)
        if address is not None or name is not None or _THIRD_PARTY.search(folded):
            return Intent("referral", referral=address, referral_name=name)
    until = later_date(folded, today, language)
    if _NOT_INTERESTED.search(folded):
        if not _HARD_NO.search(folded) and (until is not None or _FOR_NOW.search(folded)):
            return Intent("later", later_until=until)
        return Intent("not_interested")
    interested = bool(_INTERESTED.search(folded) or _WANTS_NOW.search(folded))
    # "happy to talk after the summer" waits; "send a quote, we buy in Q3" does not
    far = until is not None and until > today + NEAR and not _WANTS_NOW.search(folded)
    if _LATER.search(folded) or (until is not None and (far or not interested)):
        return Intent("later", later_until=until)
    if interested or (_YES.match(folded) and len(folded.split()) <= 8):
        return Intent("interested")
    if _is_question(text):
        return Intent("question")
    return Intent("other")

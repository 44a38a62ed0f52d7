"""Pure detectors for what a seller's text must not carry: links, phones, e-mails, personal data, promo codes.

Each `find_*` returns the first offending fragment, or None. Contacts and personal data come back
*masked* (`+7 9** *** ** 67`, `i***@mail.ru`, `4*** **** **** **11`), so the policy gate can say what
it found in a refusal's detail without copying a buyer's data into the outbox.

Heuristics, and what they cannot do:

- **links** (`find_link`): `http(s)://`, `ftp://`, `www.`, and bare domains with a known top-level
  domain (`shop.ru`, `t.me/x`, `wa.me/…`, `vk.com/…`, `goo.gl`), including Cyrillic ones (`магазин.рф`).
  E-mail addresses are removed first so `ivan@mail.ru` is reported as an e-mail, not a link. A domain
  with a TLD missing from `_LATIN_TLDS`, or one written as `shop точка ru`, is not found.
- **phones** (`find_phone`): a run of digits joined by at most three spaces, dashes or brackets
  (so `8 9 1 2 3 4 5 6 7 8 9` is one run), optionally after `+`. It is a phone when it has `+` and
  10–15 digits, or 11 digits starting with 7 or 8, or 10 digits starting with 9 (a mobile without the
  prefix) or written with a bracketed area code. Dots and colons end a run, so dates (`12.03.2026`) and
  times do not join up; prices (`1 500 ₽`) are too short; sizes (`42 44 46 48 50`) start with the wrong
  digit. A run right after `№`, `#`, «заказ», «артикул», «order» or «SKU» is taken as an order number.
  Limits: an order number of the phone's shape without such a word is reported; numbers spelt out in
  words ("восемь девять…") or broken by letters are not found.
- **e-mails** (`find_email`): `name@domain.tld`, and obfuscations with a known TLD: `name at mail dot
  ru`, `name (at) mail [dot] ru`, `name собака mail точка ru`, `name @ mail . ru`.
- **personal data** (`find_personal_data`): card numbers (13–19 digits, contiguous or in groups of
  four, or Amex 4-6-5, passing Luhn), passport series/number (`паспорт 45 06 123456`, `серия 4506
  номер 123456`), the `forbidden_words` the caller passes (e.g. the buyer's name; whole words, any
  case), and **off-platform contact**: messenger handles (`@shop_support`) and messenger names
  (telegram/телеграм, whatsapp/вацап/ватсап, viber/вайбер, instagram/инстаграм). These live here, not
  under links, because moving a buyer off the platform is forbidden everywhere (platform_rules §0):
  the gate refuses personal data always, whereas a link could one day be allowed by `links_allowed`.
  Limits: a product that really works with Telegram cannot be named; a 13–19 digit order number that
  happens to pass Luhn (1 in 10) is taken for a card unless a word like «заказ» precedes it.
- **promo codes** (`find_promo_code`): промокод/промо-код/купон/ваучер/promo code/coupon/voucher followed
  by a code (a token with a letter and either a digit or four or more capitals: `VESNA`, `sale10`), or a
  standalone token of 5–20 capital letters (Latin or Cyrillic) and digits with at least one of each
  (`SALE2026`, `ВЕСНА25`). Words in capitals without digits (`NIKE`, `ХИТ`) and hyphenated product codes
  (`XL-200`) do not count. Limits: a model name written as one token (`RTX4090`, `WH1000XM5`) looks like
  a code; an all-digit code after «промокод» is not found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "find_email",
    "find_link",
    "find_personal_data",
    "find_phone",
    "find_promo_code",
    "mask_digits",
]

_LATIN_TLDS = ("ru|su|com|net|org|info|biz|io|me|ly|cc|co|gl|app|link|shop|store|online|site|pro|club|top|"
               "xyz|kz|by|ua|uz|am|ge|de|eu|us|uk|tv|ws|page|dev|ai")
_CYRILLIC_TLDS = "рф|рус|онлайн|сайт|москва|дети"

_SCHEME_LINK = re.compile(r"(?i)\b(?:https?|ftp)://\S+|(?<![\w.])www\.\S+")
_LATIN_DOMAIN = re.compile(rf"(?i)(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_LATIN_TLDS})\b(?:/\S*)?")
_CYRILLIC_DOMAIN = re.compile(
    rf"(?i)(?<![\w@.-])(?:[а-яё0-9](?:[а-яё0-9-]*[а-яё0-9])?\.)+(?:{_CYRILLIC_TLDS})\b(?:/\S*)?")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_AT = r"(?:\s*@\s*|\s*[(\[]\s*(?:at|собака)\s*[)\]]\s*|\s+(?:at|собака)\s+)"
_DOT = r"(?:\s*\.\s*|\s*[(\[]\s*(?:dot|точка)\s*[)\]]\s*|\s+(?:dot|точка)\s+)"
_OBFUSCATED_EMAIL = re.compile(rf"(?i)(?<![\w.+-])[\w.+-]+{_AT}[\w-]+{_DOT}(?:{_LATIN_TLDS}|{_CYRILLIC_TLDS})\b")

# A run of digits with at most three spaces, dashes or brackets between them, after an optional "+".
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\d(?:[\s\-()]{0,3}\d)*")
_ORDER_WORD_BEFORE = re.compile(
    r"(?i)(?:№|#|арт\.|(?<!\w)(?:заказ\w*|артикул\w*|order|sku|отправлени\w*)\s*[:№#]?)\s*$")
_CARD_RUN = re.compile(r"(?<![\w+])\d(?:[ \-]?\d)*")
_PASSPORT = re.compile(
    r"(?i)(?:\bпаспорт\w*\D{0,30}?\d{2}\s?\d{2}\s?(?:№\s?)?\d{6}"
    r"|\bсери[яиюей]\s*\d{2}\s?\d{2}\s*,?\s*(?:№|номер\w*)?\s*\d{6})(?!\d)")
_HANDLE = re.compile(r"(?<![\w.@])@[A-Za-z][A-Za-z0-9_.]{2,31}\b")
_MESSENGER = re.compile(
    r"(?i)(?<!\w)(?:telegram|телеграм\w*|телеге|телегу|whats\s?app|вацап\w*|ватсап\w*|вотсап\w*|viber|"
    r"вайбер\w*|instagram|инстаграм\w*|инсте|skype|скайп\w*)(?!\w)")

_PROMO_KEYWORD = re.compile(
    r"(?i)(?<!\w)(?:промо-?\s?код\w*|купон\w*|ваучер\w*|coupon(?:\s+code)?|promo[\s-]?code|voucher)"
    r"[\s:«»\"“”'‘’\-–—]*([\w-]{3,30})")
_CODE_TOKEN = re.compile(
    r"(?<![\w-])(?=[A-ZА-ЯЁ0-9]{0,19}\d)(?=[A-ZА-ЯЁ0-9]{0,19}[A-ZА-ЯЁ])[A-ZА-ЯЁ0-9]{5,20}(?![\w-])")


def mask_digits(fragment: str, *, head: int = 2, tail: int = 2) -> str:
    """`fragment` with every digit but the first `head` and the last `tail` replaced by `*`."""
    total = sum(ch.isdigit() for ch in fragment)
    out, seen = [], 0
    for ch in fragment:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= head or seen > total - tail else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_word(word: str) -> str:
    return word[:1] + "***"


def find_link(text: str) -> str | None:
    """The first link (URL, `www.`, bare or Cyrillic domain), or None. E-mails are not links."""
    text = _OBFUSCATED_EMAIL.sub(" ", _EMAIL.sub(" ", text))
    found = [m for rx in (_SCHEME_LINK, _LATIN_DOMAIN, _CYRILLIC_DOMAIN) if (m := rx.search(text))]
    return min(found, key=lambda m: m.start()).group() if found else None


def _looks_like_phone(run: str) -> bool:
    digits = re.sub(r"\D", "", run)
    if run.startswith("+"):
        return 10 <= len(digits) <= 15
    if len(digits) == 11:
        return digits[0] in "78"
    if len(digits) == 10:
        return digits[0] == "9" or "(" in run or ")" in run
    return False


def _after_order_word(text: str, start: int) -> bool:
    return _ORDER_WORD_BEFORE.search(text[max(0, start - 20):start]) is not None


def find_phone(text: str) -> str | None:
    """The first phone number (masked), or None. See the module docstring for the heuristic."""
    for m in _DIGIT_RUN.finditer(text):
        run = m.group().rstrip(" -(")
        if _looks_like_phone(run) and not _after_order_word(text, m.start()):
            return mask_digits(run)
    return None


def find_email(text: str) -> str | None:
    """The first e-mail address, plain or obfuscated ("name at mail dot ru"), masked; or None."""
    found = [m for rx in (_EMAIL, _OBFUSCATED_EMAIL) if (m := rx.search(text))]
    if not found:
        return None
    value = min(found, key=lambda m: m.start()).group()
    local = re.match(r"[\w.+-]+", value)
    return _mask_word(value) + value[local.end():] if local else _mask_word(value)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_grouping(run: str) -> bool:
    groups = [len(g) for g in re.split(r"[ -]", run)]
    return (len(groups) == 1 or groups in ([4, 6, 5], [4, 6, 4])
            or (all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4))


def _find_card(text: str) -> str | None:
    for m in _CARD_RUN.finditer(text):
        run = m.group()
        digits = re.sub(r"\D", "", run)
        if (13 <= len(digits) <= 19 and _card_grouping(run) and _luhn(digits)
                and not _after_order_word(text, m.start())):
            return mask_digits(run, head=1, tail=2)
    return None


def _find_forbidden_word(text: str, words: Iterable[str]) -> str | None:
    for word in words:
        word = word.strip()
        if word and (m := re.search(rf"(?i)(?<!\w){re.escape(word)}(?!\w)", text)):
            return _mask_word(m.group())
    return None


def find_personal_data(text: str, forbidden_words: Iterable[str] = ()) -> str | None:
    """Card or passport numbers, `forbidden_words` (a buyer's name), messenger handles or names; masked.

    Messenger handles and names count as personal data (always refused), see the module docstring.
    """
    if card := _find_card(text):
        return card
    if m := _PASSPORT.search(text):
        return mask_digits(m.group(), head=2, tail=0)
    if word := _find_forbidden_word(text, forbidden_words):
        return word
    if m := _HANDLE.search(text):
        return "@" + _mask_word(m.group()[1:])
    if m := _MESSENGER.search(text):
        return m.group()
    return None


def _is_code(token: str) -> bool:
    letters = sum(ch.isalpha() for ch in token)
    digits = sum(ch.isdigit() for ch in token)
    return letters > 0 and (digits > 0 or (letters >= 4 and token.isupper()))


def find_promo_code(text: str) -> str | None:
    """A promo code: a keyword (промокод, купон, coupon…) followed by a code, or a token like SALE2026."""
    found: list[tuple[int, str]] = []
    for m in _PROMO_KEYWORD.finditer(text):
        if _is_code(m.group(1)):
            found.append((m.start(), m.group()))
            break
    if m := _CODE_TOKEN.search(text):
        found.append((m.start(), m.group()))
    return min(found)[1] if found else None

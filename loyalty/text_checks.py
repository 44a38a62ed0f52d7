"""Pure detectors for what a seller's text must not carry: links, phones, e-mails, personal data and
off-platform contact, promo codes, and benefits promised to the buyer.

Each `find_*` returns the first offending fragment, or None; `find_benefit` and `find_promotion` return a
`Benefit`. Contacts and personal data come back *masked* (`+7 9** *** ** 67`, `i***@mail.ru`,
`4*** **** **** **11`), so the policy gate can say what it found in a refusal's detail without copying a
buyer's data into the outbox. Patterns are precompiled and kept near-linear in the text's length
(bounded repetitions; lookbehinds that stop a search from restarting inside a word); a test runs every
detector on 20,000-character adversarial texts.

Heuristics, and what they cannot do:

- **links** (`find_link`): `http(s)://`, `ftp://`, `www.`, and bare domains with a known top-level domain
  (`shop.ru`, `t.me/x`, `wa.me/…`, `vk.com/…`, `goo.gl`), including Cyrillic ones (`магазин.рф`).
  Evasions: a dot with a space on either side (`shop . ru`, `shop .ru`, `shop. ru`, `vk . com/shop`,
  `t . me/shop`, up to five labels) and a spelt dot (`myshop точка ру`, `shop dot com`, `shop[dot]ru`,
  `shop(.)ru`). So that prose passes, the TLD after such a dot must be a whole word from a short list
  common enough to be meant (ru, su, com, net, org, info, biz; after a spelt dot also ру, ком, орг, инфо,
  су, рф, рус), not followed by a number (`Size M. RU 46`); any other known TLD counts only with a path
  (`t . me/x`). A spaced dot also needs a Latin label before it and the TLD in one case (`ru`/`RU`; `Ru`
  after a sentence's dot starts a word); the only spaced Cyrillic domains are `x . рф` and `x . рус`.
  So `Спасибо за отзыв. Рады помочь.` and `We liked it. Come again` pass. E-mail addresses are removed
  first so `ivan@mail.ru` is reported as an e-mail, not a link.
  Limits: a TLD outside the lists, a rarer TLD after a spaced dot without a path (`shop . me`), a
  capitalised one (`shop. Ru`), a comma for the dot (`shop,ru`), a domain in words only (`шоп ру`), or an
  invitation with no domain (`наш сайт`, a link's matter that `links_allowed` may allow) is not found.
  Falsely caught: a sentence ending in a Latin word followed by `net`, `com`, `org`, `info` as a word
  in one case (`Made in USA. NET weight`); `торговая точка РФ`.
- **phones** (`find_phone`): a run of digits joined by at most three spaces, dashes or brackets (so
  `8 9 1 2 3 4 5 6 7 8 9` is one run), or by one dot or slash with no space (`+7.912.345.67.89`,
  `8/912/345-67-89`, `8 (912) 345.67.89`), optionally after `+`. It is a phone when it has `+` and 10–15
  digits, or 11 digits starting with 7 or 8, or 10 digits starting with 9 (a mobile without the prefix)
  or written with a bracketed area code; or a local number: 7 digits grouped 3-2-2 (`123-45-67`,
  `123 45 67`, `123.45.67`), or 7 digits in any grouping right after a phone word (тел, телефон, звоните,
  позвоните, номер, моб, сотовый, call (us at), phone, tel: `тел. 2345678`, `позвоните по номеру
  2345678`). A run with a dot or slash must also be grouped like a phone (`8.912.345.67.89`,
  `912.345.6789`, `8.912.3456789`), so dates (`12.03.2026`), versions, kids' sizes (`92/98/104/110`) and
  size lists (`7/8/9/10/11/12/13`) do not count, and a dot followed by a space (a sentence's end) ends a
  run. Prices (`1 500 ₽`) are too short; sizes (`42 44 46 48 50`) start with the wrong digit; a 3-2-2
  triple followed by a unit (`120-60-60 см`) is a measure. A run right after `№`, `#`, «заказ (номер)»,
  «артикул», «отправление», «серийный номер», «трек(-номер)», IMEI, S/N, «order» or «SKU» is taken as
  such a number.
  Limits: an order number of the phone's shape without such a word is reported, as is a 3-2-2 triple
  without a unit (`габариты 120 60 60`) and `номер 1234567` meaning something else; 5–6 digit local
  numbers (`тел. 2-34-56`), numbers spelt out in words («восемь девять…») or broken by letters, and a
  phone glued to a longer run of digits are not found.
- **e-mails** (`find_email`): `name@domain.tld`, and obfuscations ending in a known TLD (Latin, Cyrillic,
  or spelt in Cyrillic: ру, ком, орг, инфо, су): the `@` as `@`, `at`, `собака` or `собачка`, between
  spaces or in `()`, `[]`, `{}`, `<>`, then the dot as `.`, `dot` or `точка` the same ways:
  `ivan at yandex dot ru`, `shop[at]mail[dot]ru`, `ivan {at} mail.ru`, `ivan собака mail точка ком`.
  Limits: only one label after a spelt `@` (`ivan at mail dot yandex dot ru` is no e-mail here, though
  `find_link` reports `yandex dot ru`; `ivan@mail.yandex.ru` is found); an `@` spelt in any other word
  (`ivan гав mail.ru`) is not found.
- **personal data and off-platform contact** (`find_personal_data`): card numbers (13–19 digits,
  contiguous or in groups of four, or Amex 4-6-5, passing Luhn), passport series/number (`паспорт 45 06
  123456`, `серия 4506 номер 123456`), the `forbidden_words` the caller passes (e.g. the buyer's name;
  whole words, any case), and **off-platform contact**: messenger handles (`@shop_support`); names that
  mean nothing but a messenger or social network (telegram/телеграм…/телеге/телегу/тг/тгк, whatsapp/
  whatsup/вацап/ватсап/вотсап/ватцап, viber/вайбер, instagram/инстаграм/insta/инста/инсте/инсту, skype/
  скайп, вк/вконтакте/vkontakte, discord/дискорд; `тг`/`вк` not before a number, as in `ТГ-5`); `tg`,
  `vk`, `wa` only in a messenger context (`в tg`, `через wa`, `tg: @x`, `vk: shop`, `tg-канал`); the MAX
  messenger only as `в/во/через (мессенджере) max/макс(е)` or `мессенджер MAX`, not before a number,
  an abbreviation's dot (`в макс. комплектации`) or a product noun (версии, комплектации, размере,
  режиме, модели, цвет…); and the seller's own channel (`наш канал`, `в нашем паблике`, `в нашем
  сообществе`, `в директ`). These live here, not under links, because moving a buyer off the platform is
  forbidden everywhere (platform_rules §0): the gate refuses personal data always, whereas a link could
  one day be allowed by `links_allowed`.
  Limits: a product that really works with Telegram or VK cannot be named; `телеге`/`телегу` is also a
  garden cart; `в MAX` before an unlisted word (`доступно в Max и Pro`) is taken for the messenger;
  `в личку`, `в лс`, YouTube, TikTok, Одноклассники and other marketplaces (`у нас на Авито`) are not
  found (platform chats and product features use the same words); a 13–19 digit order number that
  happens to pass Luhn (1 in 10) is taken for a card unless a word like «заказ» precedes it.
- **promo codes** (`find_promo_code`): промокод/промо-код/купон/ваучер/promo code/coupon/voucher followed
  by a code: a token with a letter and either a digit or four or more capitals (`VESNA`, `sale10`), or
  4–12 digits (`промокод: 7788`); the weaker introducers «по коду», «с кодом», «используйте код»,
  «введите (код)», «код:», «code», «use code», «enter code» followed by the same (`по коду 2026`,
  `введите 5555`); or a standalone token of 5–20 capital letters (Latin or Cyrillic) and digits with at
  least one of each (`SALE2026`, `ВЕСНА25`). Not codes: words in capitals without digits (`NIKE`, `ХИТ`),
  hyphenated product codes (`XL-200`), a word after the introducer (`код товара 12345`, `код заказа`,
  `введите код из SMS`, `введите номер заказа`), digits followed by a currency, `%` or a unit
  (`промокод 500 ₽`), `штрих-код:`, `QR-код:`, `пин-код:`, `назовите код:`, and `zip/QR/error/product…
  code`.
  Limits: a model name written as one token (`RTX4090`, `WH1000XM5`) looks like a code; `код: 12345`
  meaning a product code is reported; a code spelt with spaces (`S A L E 2 0`) or in lower case without
  an introducer (`sale2026`) is not found.
- **benefits** (`find_benefit`, `find_promotion`): a public reply promising the buyer anything is a
  reward for a review, forbidden on WB, Ozon and Yandex Market (platform_rules §0). Kinds
  (`BENEFIT_CLASSES`), with Russian word forms:
  `points` баллы/бонусы/бонусные баллы, `N points`, bonus/loyalty/reward points, bonus;
  `cashback` кешбэк/кэшбэк/кешбек/кэш-бэк/cashback, «вернём (до) N %»;
  `discount` скидка (all forms)/скидочный/discount, `-15 %`, `15% off`, «дешевле», «скинем/скидываем N %
  (₽, руб.)/цену»;
  `gift` «в подарок», «подарок от нас (магазина)», «подарок за отзыв/покупку/заказ», «подарок к (вашему)
  заказу/покупке», «подарок при покупке», «получите/ваш/вложим/положим/отправим/ждёт… подарок»,
  дарим/подарим/дарю/подарю, подарочный сертификат (карта), «сертификат на N», бесплатно/даром,
  free gift/gift card/for free/free of charge/get a gift;
  `free_delivery` «бесплатная (курьерская) доставка», «доставка (будет) бесплатной», «доставим
  бесплатно», «доставка за наш счёт», free delivery/shipping, shipping is free/on us;
  `promo_code` промокод/купон/ваучер/promo code/coupon/voucher even without a code, and whatever
  `find_promo_code` finds;
  `sale` акция (all forms)/акционный/распродажа/sale/специальное предложение/спецпредложение/special
  offer/выгодн….
  Hits that overlap keep the earliest, then the longest (`бесплатная доставка` is free delivery, not a
  gift). A giving verb (дарим, подарим, дарю, подарю) followed within 40 characters in the same sentence
  by another benefit takes its kind (`дарим 200 баллов` is `points`, offered).
  `Benefit.offered` is False only for points *reported*: a statement word in the same comma-delimited
  clause (начислено/зачислено/поступило/пришли/списано/накоплено/получили, на (вашем бонусном)
  счёте/балансе, баланс:, у вас (есть), удержано/заморожено/зарезервировано, or after the points
  ожидают/начислены…, credited/balance/you have/added/held/pending) and no offering word anywhere in the
  sentence (получите, начислим, дарим, дадим, предоставим, будет/будут, за отзыв/оценку/фото/комментарий,
  review, will, get, earn). So «За заказ 123 вам начислено 50 баллов», «баланс: 300 баллов» are statements
  and «начислим баллы», «баллы будут начислены», «вам начислено 50 баллов за отзыв» are offers; every
  other kind is always offered. `find_promotion` skips statements (a chat notice of points earned is a
  service message).
  Not benefits (decided): a rating in баллы («оценка 5 баллов», «за 5 баллов», «4 балла из 5», «высокий
  балл»); «без скидки», «нет скидок»; the buyer's own gift («на подарок», «подарок к Новому году»,
  «подарок понравился»); «подарит коже сияние» (3rd person); free service recovery and platform services
  near «бесплатно» in the same clause (замена, обмен, возврат, ремонт, гарантия, диагностика,
  консультация, примерка, хранение: «бесплатную замену по гарантии», a legal duty, not a reward);
  «скидываем вопросы в поддержку» (скидывать = forward; only with an amount or «цену» is it a discount);
  «выгодно отличается/подчёркивает/смотрится/выделяет/оттеняет»; «сертификат соответствия»; digits alone
  (sizes, warranty terms, prices, dates, times, order and article numbers, `Air Max 90`).
  Limits: a benefit in other words («второй товар за наш счёт», «приятный сюрприз в посылке», «вернём
  часть денег») is not found; a bare giving verb is a gift («Мы дарим вам тепло»), and «не даём скидок»,
  «скидок на этот товар нет», «скидка площадки уже в цене» are found (safe side); points credited in a
  sentence that also speaks of the future («начислено 50 баллов, они будут доступны через 14 дней») count
  as offered (safe side), while credited points whose offering word sits in another sentence count as
  reported; English is covered only for the phrases listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BENEFIT_CLASSES",
    "Benefit",
    "find_benefit",
    "find_email",
    "find_link",
    "find_personal_data",
    "find_phone",
    "find_promo_code",
    "find_promotion",
    "mask_digits",
]

# --- links and e-mails -------------------------------------------------------------------------------

_LATIN_TLDS = ("ru|su|com|net|org|info|biz|io|me|ly|cc|co|gl|app|link|shop|store|online|site|pro|club|top|"
               "xyz|kz|by|ua|uz|am|ge|de|eu|us|uk|tv|ws|page|dev|ai")
_CYRILLIC_TLDS = "рф|рус|онлайн|сайт|москва|дети"
# TLDs spelt in Cyrillic letters by people hiding an address («mail точка ру»).
_SPELT_TLDS = "ру|ком|орг|инфо|су"
# TLDs common enough to be meant when the dot before them is spaced or spelt (others need a path).
_PROSE_TLDS = ("ru", "su", "com", "net", "org", "info", "biz")


def _one_case(words: Iterable[str]) -> str:
    """An alternation matching each word all in lower or all in upper case, even under (?i)."""
    return "(?-i:" + "|".join(f"{w}|{w.upper()}" for w in words) + ")"


_LAT_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_CYR_LABEL = r"[а-яё0-9](?:[а-яё0-9-]{0,61}[а-яё0-9])?"
_HSPACE = r"[ \t\u00a0]"

_SCHEME_LINK = re.compile(r"(?i)\b(?:https?|ftp)://\S+|(?<![\w.])www\.\S+")
_LATIN_DOMAIN = re.compile(rf"(?i)(?<![\w@.-])(?:{_LAT_LABEL}\.)+(?:{_LATIN_TLDS})\b(?:/\S*)?")
_CYRILLIC_DOMAIN = re.compile(rf"(?i)(?<![\w@.-])(?:{_CYR_LABEL}\.)+(?:{_CYRILLIC_TLDS})\b(?:/\S*)?")
# A dot with a space on at least one side; a tight dot is _LATIN_DOMAIN's. At most five labels, TLD included:
# unbounded, prose of short words and dots ("a . a . a …") would be rescanned to its end from every word.
_SPACED_DOT = rf"(?:{_HSPACE}+\.{_HSPACE}*|\.{_HSPACE}+)"
_PATH = r"/[\w-]\S*"
_SPACED_DOMAIN = re.compile(
    rf"(?i)(?<![\w@.-]){_LAT_LABEL}(?:(?:\.|{_SPACED_DOT}){_LAT_LABEL}){{0,3}}?{_SPACED_DOT}"
    rf"(?:{_one_case(_PROSE_TLDS)}(?![\w-])(?:{_PATH}|(?!\s*\d))|(?:{_LATIN_TLDS}){_PATH})"
    rf"|(?<![\w@.-]){_CYR_LABEL}{_SPACED_DOT}(?-i:рф|рус)(?![\w-])")
_WORD_DOT = r"(?:\s*[(\[{<]\s*(?:dot|точка|\.)\s*[)\]}>]\s*|\s+(?:dot|точка)\s+)"
_WORD_DOT_DOMAIN = re.compile(
    rf"(?i)(?<![\w@.-])(?:{_LAT_LABEL}|{_CYR_LABEL}){_WORD_DOT}"
    rf"(?:(?:{'|'.join(_PROSE_TLDS)}|{_SPELT_TLDS}|рф|рус)(?![\w-])(?:{_PATH}|(?!\s*\d))|(?:{_LATIN_TLDS}){_PATH})")

# The lookbehind keeps the search linear: without it every start inside a long word rescans to its end.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_AT = (r"(?:\s*@\s*|\s*[(\[{<]\s*(?:at|собака|собачка|@)\s*[)\]}>]\s*|\s+(?:at|собака|собачка)\s+)")
_DOT = rf"(?:\s*\.\s*|{_WORD_DOT})"
_LOCAL_PART = re.compile(r"[\w.+-]+")
_OBFUSCATED_EMAIL = re.compile(
    rf"(?i)(?<![\w.+-])[\w.+-]+{_AT}[\w-]+{_DOT}(?:{_LATIN_TLDS}|{_CYRILLIC_TLDS}|{_SPELT_TLDS})(?![\w-])")

# --- phones ------------------------------------------------------------------------------------------

# Digits joined by up to three spaces, dashes or brackets, or by one dot or slash with no space around
# it (a dot and a space end a sentence, hence the run), after an optional "+".
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\d(?:(?:[\s\-()]{0,3}|[\-()]?[./][\-()]?)\d)*")
_DIGIT_GROUP = re.compile(r"\d+")
_NON_DIGIT = re.compile(r"\D")
_ORDER_WORD_BEFORE = re.compile(
    r"(?i)(?:№|#|арт\.|(?<!\w)(?:заказ\w*|артикул\w*|order|sku|отправлени\w*|серийн\w*\s+номер\w*|"
    r"трек\w*(?:[\s-]*номер\w*)?|imei|s/n|sn)"
    r"(?:\s+(?:номер|no\.?|number))?\s*[:№#]?)\s*$")
_PHONE_WORD_BEFORE = re.compile(
    r"(?i)(?<!\w)(?:тел\.?|телефон\w*|звоните|позвоните|звонить|позвонить|номер\w*|моб\.?|мобильн\w*|"
    r"сотов\w*|call(?:\s+us)?(?:\s+at)?|phone|tel\.?)\s*[:.\-–—]?\s*(?:(?:нам|мне|по|на)\s+)?$")
_UNIT_AFTER = re.compile(r"(?i)\s*(?:см|мм|м|кг|г|л|мл|шт|cm|mm|kg|%|₽|руб|р\.|гб|gb)(?!\w)")
# National (10-digit) groupings a phone is written in, for runs joined by dots or slashes.
_NATIONAL_LAYOUTS = frozenset({(3, 3, 2, 2), (3, 3, 4), (3, 7), (10,), (4, 2, 2, 2), (4, 3, 3), (4, 6),
                               (5, 1, 2, 2), (5, 5)})

# --- personal data, off-platform contact -------------------------------------------------------------

_CARD_RUN = re.compile(r"(?<![\w+])\d(?:[ \-]?\d)*")
_CARD_SEPARATOR = re.compile(r"[ -]")
_PASSPORT = re.compile(
    r"(?i)(?:\bпаспорт\w*\D{0,30}?\d{2}\s?\d{2}\s?(?:№\s?)?\d{6}"
    r"|\bсери[яиюей]\s*\d{2}\s?\d{2}\s*,?\s*(?:№|номер\w*)?\s*\d{6})(?!\d)")
_HANDLE = re.compile(r"(?<![\w.@])@[A-Za-z][A-Za-z0-9_.]{2,31}\b")
# Names that mean nothing but a messenger or social network in a seller's text.
_MESSENGER = re.compile(
    r"(?i)(?<![\w-])(?:telegram|телеграм\w*|телеге|телегу|тгк?(?!-?\d)|whats\s?app|whatsup|в[ао]т?[сц]апп?\w*|"
    r"viber|вайбер\w*|instagram|инстаграм\w*|insta|инст[аеуы]|skype|скайп\w*|вконтакт\w*|vkontakte|"
    r"вк(?!-?\d)|discord|дискорд\w*)(?!\w)")
# Short or ambiguous names, only where they must mean a messenger.
_MESSENGER_IN_CONTEXT = re.compile(
    r"(?i)(?<!\w)(?:в|во|через)\s+(?:tg|vk|wa)(?![\w-])"
    r"|(?<![\w-])(?:tg|vk|wa)(?:\s*[:@]|[\s-]*(?:канал|чат|групп|паблик|channel|chat|group))"
    r"|(?<!\w)(?:(?:в|во|через)\s+(?:мессенджер[еа]?\s+)?|мессенджер\w*\s+)(?:max|макс(?:е|у|а)?)"
    r"(?![\w-])(?!\s*\d)(?!\.\s*(?-i:[a-zа-яё]))"
    r"(?!\s+(?:верси|комплектаци|размер|модел|цвет|режим|скорост|мощност|яркост|громкост|исполнени)\w*)")
# The seller's own channel or group (a site is a link's matter: `links_allowed` may allow «наш сайт shop.ru»).
_OWN_CHANNEL = re.compile(
    r"(?i)(?<!\w)наш(?:ем|его|ему|им|ей|у|а|и)?\s+(?:официальн\w+\s+)?(?:канал\w*|паблик\w*|сообществ\w*)(?!\w)"
    r"|(?<!\w)в\s+(?:директ|direct)(?!\w)")

# --- promo codes -------------------------------------------------------------------------------------

_QUOTES = r"[\s:«»\"“”'‘’\-–—]*"
_PROMO_KEYWORD = re.compile(
    r"(?i)(?<!\w)(?:промо-?\s?код\w*|купон\w*|ваучер\w*|coupon(?:\s+code)?|promo[\s-]?code|voucher)"
    rf"{_QUOTES}([\w-]{{3,30}})")
_PROMO_INTRODUCER = re.compile(
    r"(?i)(?<![\w-])(?:по\s+коду|с\s+кодом|используйте\s+код|введите(?:\s+код)?|код\s*:|"
    r"(?:use\s+|enter\s+)?code\s*:?)"
    rf"{_QUOTES}([A-Za-zА-Яа-яЁё0-9]{{3,20}})(?![\w-])")
_NOT_PROMO_CODE_BEFORE = re.compile(
    r"(?i)(?<!\w)(?:zip|post(?:al)?|qr|bar|error|product|item|order|area|country|source|pin|sms|hs|colou?r|"
    r"style|access|security|verification|confirmation|назовите|сообщите|покажите|продиктуйте)[\s-]*$")
_CODE_TOKEN = re.compile(
    r"(?<![\w-])(?=[A-ZА-ЯЁ0-9]{0,19}\d)(?=[A-ZА-ЯЁ0-9]{0,19}[A-ZА-ЯЁ])[A-ZА-ЯЁ0-9]{5,20}(?![\w-])")
_MONEY_AFTER = re.compile(r"(?i)\s*(?:%|₽|\$|€|руб|р\.|rub|usd|eur|тыс|шт|дн|лет|год|мес)")

# --- benefits ----------------------------------------------------------------------------------------

BENEFIT_CLASSES: tuple[str, ...] = ("points", "cashback", "discount", "gift", "free_delivery", "promo_code",
                                    "sale")


@dataclass(frozen=True, slots=True)
class Benefit:
    """A benefit a text promises or reports.

    `kind` is one of BENEFIT_CLASSES; `fragment` the matched text as written; `offered` is False only
    for points reported as credited or held (a statement of fact), True otherwise.
    """

    kind: str
    fragment: str
    offered: bool


_NUMBER = r"\d+(?:[ \u00a0]\d{3})*\s*"
_POINTS = re.compile(
    rf"(?i)(?<![\w.,])(?:{_NUMBER})?(?:бонусн\w*\s+)?(?:балл(?:ы|ов|а|ам|ами|ах)?|бонус(?:ы|ов|а|ам|ами|ах|ом)?|"
    r"бонусн\w*)(?!\w)"
    r"|(?<![\w.,])(?:\d+\s*|(?:bonus|loyalty|reward|extra|double)\s+)points?(?!\w)|(?<!\w)bonus(?:es)?(?!\w)")
# A rating given in баллы, not points: «оценка 5 баллов», «за 5 баллов», «4 балла из 5», «высокий балл».
_RATING_BEFORE = re.compile(r"(?i)(?<!\w)(?:оценк\w*|оценил\w*|поставил\w*|рейтинг\w*|за)\s+(?:в\s+|на\s+)?$")
_HIGH_BEFORE = re.compile(r"(?i)(?<!\w)высок\w*\s+$")
_RATING_AFTER = re.compile(r"(?i)\s*из\s+\d")
_CASHBACK = re.compile(
    r"(?i)(?<!\w)(?:к[еэ]ш-?б[еэ]к\w*|cash-?\s?back)(?!\w)"
    r"|(?<!\w)(?:верн[её]м|возвращаем)\s+(?:вам\s+)?(?:до\s+)?\d+(?:[.,]\d+)?\s?%")
_DISCOUNT = re.compile(
    r"(?i)(?<!\w)(?:скидк\w*|скидок|скидоч\w*|discounts?|discounted|дешевле)(?!\w)"
    r"|(?<![\w%])(?<!\d\s)[-−–]\d{1,2}(?:[.,]\d)?\s?%"
    r"|(?<![\w.,])\d{1,2}\s?%\s+off(?!\w)"
    r"|(?<!\w)(?:скин(?:ем|у|ули)|скидыва(?:ем|ю))\s+(?:вам\s+)?(?:ещё\s+|еще\s+)?"
    r"(?:\d+\s*(?:%|₽|руб\w*|р\.)|цен\w*)")
_NEGATED_BEFORE = re.compile(r"(?i)(?<!\w)(?:без|нет)\s+$")
_GIFT = re.compile(
    r"(?i)(?<!\w)в\s+подарок(?!\w)"
    r"|(?<!\w)подар(?:ок|ки|ка|ков|ку|ком)\s+(?:от\s+(?:нас|магазина|продавца)|"
    r"за\s+(?:отзыв|оценк|фото|покупк|заказ)\w*|к\s+(?:\w+\s+)?(?:заказу|покупке)|при\s+(?:покупке|заказе)|"
    r"в\s+каждый)(?!\w)"
    r"|(?<!\w)(?:ваш|получите|получить|положим|вложим|добавим|отправим|приготовили|ждёт|ждет)\s+"
    r"(?:\w+\s+)?подар(?:ок|ки|ка|ков|ку|ком)(?!\w)"
    r"|(?<!\w)подарочн\w*\s+(?:сертификат|карт)\w*|(?<!\w)сертификат\w*\s+на\s+\d"
    r"|(?<!\w)(?:бесплатн\w*|даром)(?!\w)"
    r"|(?<!\w)(?:free\s+gift|gift\s+(?:card|certificate)|for\s+free|free\s+of\s+charge)(?!\w)"
    r"|(?<!\w)(?:get|receive|send\s+you|give\s+you|enjoy)\s+a\s+(?:free\s+|small\s+)?gift(?!\w)")
# «бесплатно» in free service recovery (a legal duty, not a reward for a review).
_SERVICE_NEAR = re.compile(
    r"(?i)(?<!\w)(?:замен|обмен|возврат|ремонт|гаранти|диагностик|консультац|примерк|хранени|replace|exchange|"
    r"return|repair|warranty)")
_GIVING_VERB = re.compile(r"(?i)(?<!\w)(?:по)?дар(?:им|ю)(?!\w)")
_FREE_DELIVERY = re.compile(
    r"(?i)(?<!\w)бесплатн\w*\s+(?:\w+\s+){0,2}?(?:доставк\w*|пересылк\w*|отправк\w*)"
    r"|(?<!\w)(?:доставк\w*|доставим|привез[её]м|отправим)\s+(?:\w+\s+){0,2}?"
    r"(?:бесплатн\w*|за\s+наш\s+сч[её]т|за\s+сч[её]т\s+магазина)"
    r"|(?<!\w)(?:free\s+(?:delivery|shipping)|(?:delivery|shipping)\s+(?:is\s+)?(?:free|on\s+us))(?!\w)")
_PROMO_WORD = re.compile(
    r"(?i)(?<!\w)(?:промо-?\s?код\w*|купон\w*|ваучер\w*|promo[\s-]?codes?|coupons?|vouchers?)(?!\w)")
_SALE = re.compile(
    r"(?i)(?<!\w)(?:акци(?:я|и|ю|ей|ям|ями|ях)|акционн\w*|распродаж\w*|sale|спецпредложени\w*|"
    r"специальн\w+\s+предложени\w*|special\s+offers?|выгодн\w*)(?!\w)")
_NOT_SALE_AFTER = re.compile(r"(?i)\s+(?:отлича|подч[её]рк|смотр|выдел|оттен)")

_SENTENCE_END = re.compile(r"[.!?;\n]")
_CLAUSE_END = re.compile(r"[,.!?;\n]")
_STATED_BEFORE = re.compile(
    r"(?i)(?<!\w)(?:начислен\w*|зачислен\w*|поступил\w*|пришл[иао]|списан\w*|накоплен\w*|получили|"
    r"на\s+(?:ваш\w*\s+)?(?:бонусн\w*\s+)?(?:сч[её]т\w*|баланс\w*)|баланс\w*|у\s+вас(?:\s+есть)?|"
    r"удержан\w*|заморожен\w*|зарезервирован\w*|credited|balance|you\s+have|you\s+received|earned)(?!\w)")
_STATED_AFTER = re.compile(
    r"(?i)(?<!\w)(?:начислен\w*|зачислен\w*|поступил\w*|списан\w*|ожида\w+|удержан\w*|заморожен\w*|"
    r"зарезервирован\w*|на\s+(?:ваш\w*\s+)?(?:сч[её]т|баланс)\w*|credited|added|held|pending|on\s+hold)(?!\w)")
_OFFERING = re.compile(
    r"(?i)(?<!\w)(?:получите|получить|получат|начислим|начислят|начислю|дарим|подарим|дадим|подарю|дарю|"
    r"предоставим|буд(?:ет|ут)|за\s+(?:ваш\w*\s+)?(?:отзыв|оценк|фото|коммент)\w*|reviews?|will|get|earn)(?!\w)")
_MERGE_WITHIN = 40  # a giving verb takes the benefit that follows it this close, in the same sentence


# --- helpers -----------------------------------------------------------------------------------------

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


def _first(text: str, *patterns: re.Pattern[str]) -> re.Match[str] | None:
    found = [m for rx in patterns if (m := rx.search(text))]
    return min(found, key=lambda m: m.start()) if found else None


def _before(text: str, start: int, width: int = 30) -> str:
    return text[max(0, start - width):start]


# --- links -------------------------------------------------------------------------------------------

def find_link(text: str) -> str | None:
    """The first link (URL, `www.`, bare or Cyrillic domain, spaced or spelt dot), or None. E-mails are not links."""
    text = _OBFUSCATED_EMAIL.sub(" ", _EMAIL.sub(" ", text))
    m = _first(text, _SCHEME_LINK, _LATIN_DOMAIN, _CYRILLIC_DOMAIN, _SPACED_DOMAIN, _WORD_DOT_DOMAIN)
    return m.group() if m else None


# --- phones ------------------------------------------------------------------------------------------

def _phone_layout(groups: list[int]) -> bool:
    """Whether digit groups split by dots or slashes are grouped like a phone (`8.912.345.67.89`)."""
    total = sum(groups)
    if total == 11:  # drop the trunk prefix (7 or 8) from the first group
        groups = [groups[0] - 1, *groups[1:]] if groups[0] > 1 else groups[1:]
    elif total == 7:
        return groups == [3, 2, 2]
    return tuple(groups) in _NATIONAL_LAYOUTS


def _looks_like_phone(run: str, after_phone_word: bool) -> bool:
    digits = "".join(_DIGIT_GROUP.findall(run))
    groups = [len(g) for g in _DIGIT_GROUP.findall(run)]
    if run.startswith("+"):
        return 10 <= len(digits) <= 15
    if ("." in run or "/" in run) and not _phone_layout(groups):
        return False
    if len(digits) == 11:
        return digits[0] in "78"
    if len(digits) == 10:
        return digits[0] == "9" or "(" in run or ")" in run
    if len(digits) == 7:  # a local number: grouped 3-2-2, or any grouping after a phone word
        return groups == [3, 2, 2] or after_phone_word
    return False


def _after_order_word(text: str, start: int) -> bool:
    return _ORDER_WORD_BEFORE.search(_before(text, start)) is not None


def find_phone(text: str) -> str | None:
    """The first phone number (masked), or None. See the module docstring for the heuristic."""
    for m in _DIGIT_RUN.finditer(text):
        run = m.group().rstrip(" -(")
        before = _before(text, m.start())
        if not _looks_like_phone(run, _PHONE_WORD_BEFORE.search(before) is not None):
            continue
        if _after_order_word(text, m.start()):
            continue
        # A local-looking 3-2-2 triple followed by a unit is a measure (120-60-60 см), not a phone.
        if len(_DIGIT_GROUP.findall(run)) == 3 and _UNIT_AFTER.match(text, m.start() + len(run)):
            continue
        return mask_digits(run)
    return None


# --- e-mails -----------------------------------------------------------------------------------------

def find_email(text: str) -> str | None:
    """The first e-mail address, plain or obfuscated ("name at mail dot ru"), masked; or None."""
    m = _first(text, _EMAIL, _OBFUSCATED_EMAIL)
    if m is None:
        return None
    value = m.group()
    local = _LOCAL_PART.match(value)
    return _mask_word(value) + value[local.end():] if local else _mask_word(value)


# --- personal data -----------------------------------------------------------------------------------

def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_grouping(run: str) -> bool:
    groups = [len(g) for g in _CARD_SEPARATOR.split(run)]
    return (len(groups) == 1 or groups in ([4, 6, 5], [4, 6, 4])
            or (all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4))


def _find_card(text: str) -> str | None:
    for m in _CARD_RUN.finditer(text):
        run = m.group()
        digits = _NON_DIGIT.sub("", run)
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
    """Card or passport numbers, `forbidden_words` (a buyer's name), or off-platform contact; masked.

    Off-platform contact (messenger handles and names, the seller's own site or channels) counts as
    personal data, which the gate always refuses; see the module docstring.
    """
    if card := _find_card(text):
        return card
    if m := _PASSPORT.search(text):
        return mask_digits(m.group(), head=2, tail=0)
    if word := _find_forbidden_word(text, forbidden_words):
        return word
    if m := _HANDLE.search(text):
        return "@" + _mask_word(m.group()[1:])
    if m := _first(text, _MESSENGER, _MESSENGER_IN_CONTEXT, _OWN_CHANNEL):
        return m.group()
    return None


# --- promo codes -------------------------------------------------------------------------------------

def _is_code(token: str) -> bool:
    letters = sum(ch.isalpha() for ch in token)
    digits = sum(ch.isdigit() for ch in token)
    return letters > 0 and (digits > 0 or (letters >= 4 and token.isupper()))


def _is_digit_code(text: str, m: re.Match[str]) -> bool:
    """4–12 digits after an introducer, not an amount (`промокод 500 ₽`, `2026 год`)."""
    token = m.group(1)
    return token.isdigit() and 4 <= len(token) <= 12 and not _MONEY_AFTER.match(text, m.end(1))


def _promo_code_match(text: str) -> tuple[int, str] | None:
    found: list[tuple[int, str]] = []
    for m in _PROMO_KEYWORD.finditer(text):
        if _is_code(m.group(1)) or _is_digit_code(text, m):
            found.append((m.start(), m.group()))
            break
    for m in _PROMO_INTRODUCER.finditer(text):
        if _NOT_PROMO_CODE_BEFORE.search(_before(text, m.start(), 20)):
            continue
        if _is_code(m.group(1)) or _is_digit_code(text, m):
            found.append((m.start(), m.group()))
            break
    if m := _CODE_TOKEN.search(text):
        found.append((m.start(), m.group()))
    return min(found) if found else None


def find_promo_code(text: str) -> str | None:
    """A promo code: a keyword or introducer (промокод, по коду, введите…) and a code, or a token like SALE2026."""
    found = _promo_code_match(text)
    return found[1] if found else None


# --- benefits ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    kind: str
    offered: bool = True
    giver: bool = False  # a giving verb (дарим), which takes the kind of the benefit after it


def _bounds(text: str, start: int, end: int, ends: re.Pattern[str], width: int) -> tuple[int, int]:
    """The span of the sentence or clause around [start, end), at most `width` characters either side."""
    lo = max(0, start - width)
    left = max((m.end() for m in ends.finditer(text, lo, start)), default=lo)
    m = ends.search(text, end, end + width)
    return left, m.start() if m else min(len(text), end + width)


def _points_stated(text: str, start: int, end: int) -> bool:
    """Points reported as credited or held (a statement of fact), not offered."""
    s_lo, s_hi = _bounds(text, start, end, _SENTENCE_END, 200)
    if _OFFERING.search(text, s_lo, s_hi):
        return False
    c_lo, c_hi = _bounds(text, start, end, _CLAUSE_END, 60)
    return bool(_STATED_BEFORE.search(text, c_lo, start) or _STATED_AFTER.search(text, end, c_hi))


def _points_hits(text: str) -> Iterable[_Hit]:
    for m in _POINTS.finditer(text):
        number = _DIGIT_GROUP.match(m.group())
        if number and len(number.group()) == 1 and (
                _RATING_BEFORE.search(_before(text, m.start())) or _RATING_AFTER.match(text, m.end())):
            continue  # «оценка 5 баллов», «4 балла из 5»
        if not number and _HIGH_BEFORE.search(_before(text, m.start())):
            continue  # «высокий балл»
        yield _Hit(m.start(), m.end(), "points", offered=not _points_stated(text, m.start(), m.end()))


def _gift_hits(text: str) -> Iterable[_Hit]:
    for m in _GIFT.finditer(text):
        free = m.group().lower().startswith(("бесплатн", "даром", "for free", "free of"))
        if free:
            lo, hi = _bounds(text, m.start(), m.end(), _CLAUSE_END, 40)
            if _SERVICE_NEAR.search(text, lo, hi):
                continue  # free replacement or repair under warranty: service, not a reward
        yield _Hit(m.start(), m.end(), "gift")
    for m in _GIVING_VERB.finditer(text):
        yield _Hit(m.start(), m.end(), "gift", giver=True)


def _simple_hits(text: str) -> Iterable[_Hit]:
    for m in _CASHBACK.finditer(text):
        yield _Hit(m.start(), m.end(), "cashback")
    for m in _DISCOUNT.finditer(text):
        if not _NEGATED_BEFORE.search(_before(text, m.start(), 10)):
            yield _Hit(m.start(), m.end(), "discount")
    for m in _FREE_DELIVERY.finditer(text):
        yield _Hit(m.start(), m.end(), "free_delivery")
    for m in _PROMO_WORD.finditer(text):
        yield _Hit(m.start(), m.end(), "promo_code")
    if code := _promo_code_match(text):
        yield _Hit(code[0], code[0] + len(code[1]), "promo_code")
    for m in _SALE.finditer(text):
        if not (m.group().lower().startswith("выгодн") and _NOT_SALE_AFTER.match(text, m.end())):
            yield _Hit(m.start(), m.end(), "sale")


def _benefits(text: str) -> list[Benefit]:
    """Every benefit in `text`, in order; overlapping hits keep the earliest, then the longest."""
    hits = sorted([*_points_hits(text), *_gift_hits(text), *_simple_hits(text)],
                  key=lambda h: (h.start, -(h.end - h.start)))
    kept: list[_Hit] = []
    for hit in hits:
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    out: list[Benefit] = []
    i = 0
    while i < len(kept):
        hit = kept[i]
        nxt = kept[i + 1] if i + 1 < len(kept) else None
        if (hit.giver and nxt is not None and nxt.start - hit.end <= _MERGE_WITHIN
                and not _SENTENCE_END.search(text, hit.end, nxt.start)):
            out.append(Benefit(nxt.kind, text[hit.start:nxt.end], True))  # «дарим 200 баллов»
            i += 2
            continue
        out.append(Benefit(hit.kind, text[hit.start:hit.end], hit.offered))
        i += 1
    return out


def find_benefit(text: str) -> Benefit | None:
    """The first benefit of any kind, offered or only reported (points credited), or None."""
    found = _benefits(text)
    return found[0] if found else None


def find_promotion(text: str) -> Benefit | None:
    """The first benefit offered to the buyer (a sale counts), or None; points only reported are skipped."""
    return next((b for b in _benefits(text) if b.offered), None)

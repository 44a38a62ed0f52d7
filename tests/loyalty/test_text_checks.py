"""The text detectors on realistic Russian texts: what they must find, evasions, and false-positive guards."""

from __future__ import annotations

import pytest

from loyalty.text_checks import (
    find_email,
    find_link,
    find_personal_data,
    find_phone,
    find_promo_code,
    mask_digits,
)

# Texts a seller really writes, which none of the detectors may flag.
CLEAN = [
    "Спасибо за отзыв! Рады, что куртка подошла по размеру. Ваш магазин «Уют»",
    "Спасибо за 5 звёзд! Ждём вас снова.",
    "Цена 1 500 ₽, а по акции 12 990 ₽ за комплект из 3 предметов.",
    "Доставка 12.03.2026 с 10:00 до 18:00, заказ № 123456789012 уже в пути.",
    "Заказ 9123456789 передан в доставку.",
    "Размер XL-200 в наличии, модель 2024 года, артикул 87654321.",
    "Размеры 42 44 46 48 50 — уточните в карточке товара.",
    "Бренд NIKE и ADIDAS, хит продаж, ТОП-10 на площадке.",
    "Т.е. товар можно вернуть в течение 7 дней, и т.д. Спасибо.Ждём вас!",
    "Отправление 12345678-0001-1 доставлено в пункт выдачи.",
    "Оценка 4 из 5 — нам есть куда расти. Версия прошивки 1.5.2.",
    "Нам очень жаль, что товар вас огорчил. Напишите в чат заказа на площадке: поможем с обменом.",
    "Коробка 30 × 20 × 10 см, вес 2,5 кг. С 1 по 15 марта скидка 15%.",
    "",
]


@pytest.mark.parametrize("text", CLEAN)
@pytest.mark.parametrize("detector", [find_link, find_phone, find_email, find_personal_data, find_promo_code])
def test_ordinary_texts_are_clean(detector, text):
    assert detector(text) is None


@pytest.mark.parametrize("text, found", [
    ("Подробнее на нашем сайте https://uyut-shop.ru/sale?x=1", "https://uyut-shop.ru/sale?x=1"),
    ("Заходите: www.uyut.ru", "www.uyut.ru"),
    ("Больше товаров в магазине uyut-shop.ru — ждём!", "uyut-shop.ru"),
    ("Наш канал t.me/uyut_shop", "t.me/uyut_shop"),
    ("Напишите в wa.me/79123456789", "wa.me/79123456789"),
    ("Группа vk.com/uyut", "vk.com/uyut"),
    ("Скидки на сайте магазин-уют.рф", "магазин-уют.рф"),
    ("ПЕРЕХОДИТЕ НА SHOP.RU", "SHOP.RU"),
    ("Короткая ссылка goo.gl/abc", "goo.gl/abc"),
])
def test_links(text, found):
    assert find_link(text) == found


def test_an_email_is_not_a_link():
    assert find_link("Пишите на support@uyut.ru") is None
    assert find_link("Пишите на support собака uyut.ru") is None


@pytest.mark.parametrize("text, masked", [
    ("Звоните +7 (912) 345-67-67", "+7 (9**) ***-**-67"),
    ("Наш телефон 8 912 345 67 89.", "8 9** *** ** 89"),
    ("тел.89123456789", "89*******89"),
    ("Телефон: 8-800-555-35-35", "8-8**-***-**-35"),
    ("Городской (495) 123-45-67", "49*) ***-**-67"),
    ("Мобильный 912 345-67-89", "91* ***-**-89"),
    ("International +44 20 7946 0958", "+44 ** **** **58"),
    ("Звоните 8 9 1 2 3 4 5 6 7 8 9", "8 9 * * * * * * * 8 9"),
    ("Звоните 8  912  345  67  89 вечером", "8  9**  ***  **  89"),
])
def test_phones_are_found_and_masked(text, masked):
    assert find_phone(text) == masked


@pytest.mark.parametrize("text", [
    "Цена 1 500 ₽", "Доставим 12.03.2026", "Заказ № 89123456789", "Артикул 89123456789",
    "Рост 170-176, обхват 96-100", "Order #79123456789", "Время 10:30-12:00", "за 2 990 ₽ и 3 490 ₽",
])
def test_phone_false_positive_guards(text):
    assert find_phone(text) is None


@pytest.mark.parametrize("text, masked", [
    ("Пишите на ivan.petrov@mail.ru", "i***@mail.ru"),
    ("Почта: ivan at mail dot ru", "i*** at mail dot ru"),
    ("ivan (at) yandex [dot] ru", "i*** (at) yandex [dot] ru"),
    ("адрес shop собака mail точка ru", "s*** собака mail точка ru"),
    ("shop @ mail . ru", "s*** @ mail . ru"),
])
def test_emails_are_found_and_masked(text, masked):
    assert find_email(text) == masked


@pytest.mark.parametrize("text", ["Посмотрите at the back", "Наша собака любит эту игрушку", "dot com эпоха"])
def test_email_false_positive_guards(text):
    assert find_email(text) is None


@pytest.mark.parametrize("text, found", [
    ("Оплатите на карту 4111 1111 1111 1111", "4*** **** **** **11"),
    ("Карта 5500000000000004", "5*************04"),
    ("паспорт 45 06 123456", "паспорт 45 ** ******"),
    ("Серия 4506 номер 123456", "Серия 45** номер ******"),
    ("Пишите нам в личку @uyut_support", "@u***"),
    ("Напишите в Телеграм, договоримся", "Телеграм"),
    ("Скиньте в вацап", "вацап"),
    ("Есть WhatsApp и Viber", "WhatsApp"),
])
def test_personal_data(text, found):
    assert find_personal_data(text) == found


def test_a_card_number_must_pass_luhn_and_look_like_a_card():
    assert find_personal_data("Номер 4111 1111 1111 1112") is None  # Luhn fails
    assert find_personal_data("Отправление 12345678-0001-1") is None  # Ozon posting number


def test_forbidden_words_are_whole_words_and_masked():
    assert find_personal_data("Анна, спасибо за отзыв!", ["Анна"]) == "А***"
    assert find_personal_data("АННА, спасибо!", ["анна"]) == "А***"
    assert find_personal_data("Саванна — красивый цвет", ["Анна"]) is None
    assert find_personal_data("Спасибо!", ["", "  "]) is None


def test_an_email_is_not_a_messenger_handle():
    assert find_personal_data("support@uyut.ru") is None


@pytest.mark.parametrize("text, found", [
    ("Дарим промокод SALE2026 на следующую покупку", "промокод SALE2026"),
    ("Ваш промо-код: «VESNA»", "промо-код: «VESNA"),
    ("По купону ЛЕТО скидка 10%", "купону ЛЕТО"),
    ("Use promo code abc10", "promo code abc10"),
    ("Coupon: WINTER", "Coupon: WINTER"),
    ("Только сегодня SALE2026!", "SALE2026"),
    ("Код ВЕСНА25 на всё", "ВЕСНА25"),
])
def test_promo_codes(text, found):
    assert find_promo_code(text) == found


@pytest.mark.parametrize("text", [
    "Дарим промокод на следующую покупку", "Бренд NIKE, коллекция SUMMER", "Размер XL-200", "Модель A4",
    "Спасибо за 5 звёзд", "Купон на скидку будет в приложении", "Стандарт USB-C и HDMI", "До 2026 года",
])
def test_promo_code_false_positive_guards(text):
    assert find_promo_code(text) is None


def test_known_limit_model_names_in_one_token_look_like_codes():
    assert find_promo_code("Видеокарта RTX4090") == "RTX4090"


def test_mask_digits():
    assert mask_digits("+7 912 345 67 67") == "+7 9** *** ** 67"
    assert mask_digits("12", head=2, tail=2) == "12"
    assert mask_digits("abc") == "abc"

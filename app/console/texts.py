"""The console's words in Russian and English, picked by the browser's Accept-Language (the
seller's staff read Russian; Russian also when the browser asks for neither)."""

from __future__ import annotations

__all__ = ["KINDS", "TEXTS", "language"]

# What each action kind is called in the inbox (its stored title, composed in English by the
# planners, is shown beside it).
KINDS: dict[str, dict[str, str]] = {
    "ru": {"reply_to_review": "Ответ на отзыв", "edit_review_reply": "Правка ответа на отзыв",
           "send_chat_message": "Сообщение в чат заказа", "start_chat": "Новый чат с покупателем",
           "create_promo_code": "Персональный промокод", "review_points_program": "Баллы за отзывы",
           "loyalty_discount": "Скидка постоянным покупателям", "club_discount": "Клубная скидка",
           "seller_cashback": "Кешбэк продавца", "ops_task": "Задача"},
    "en": {"reply_to_review": "Reply to a review", "edit_review_reply": "Edit of a review reply",
           "send_chat_message": "Message in the order's chat", "start_chat": "New chat with the buyer",
           "create_promo_code": "Personal promo code", "review_points_program": "Points for reviews",
           "loyalty_discount": "Loyal buyers' discount", "club_discount": "Club discount",
           "seller_cashback": "Seller cashback", "ops_task": "Task"},
}

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "title": "loyalsync — консоль", "login": "Войти", "logout": "Выйти", "user": "Пользователь",
        "password": "Пароль", "bad_login": "Неверное имя или пароль.", "inbox": "Входящие", "tasks": "Задачи",
        "sync": "Синхронизация", "nothing_pending": "Ничего не ждёт решения.", "approve": "Одобрить",
        "reject": "Отклонить", "save_text": "Сохранить текст", "approve_selected": "Одобрить отмеченные",
        "review": "Отзыв", "pros": "Достоинства", "cons": "Недостатки", "proposed": "Предложенный текст",
        "age": "Возраст отзыва", "days": "дн.", "refused": "Текст не принят проверкой", "approved_n": "Одобрено",
        "rejected_n": "Отклонено", "edited": "Текст сохранён; действие ждёт решения", "history": "История",
        "done": "Выполнено", "no_tasks": "Открытых задач нет.", "cost": "Стоимость", "stream": "Поток",
        "state": "Состояние", "last_success": "Последний успех", "last_error": "Последняя ошибка",
        "csrf": "Форма устарела: откройте страницу заново.", "remote": "Консоль отвечает только этому компьютеру.",
        "mode_dry": "Режим dry-run: одобренное не отправляется.", "grounds": "Основания",
        "members": "Участники", "member_search": "Ключ участника (начало) или номер заказа", "find": "Найти",
        "no_member": "Никого не найдено.", "orders": "Заказов", "spend": "Сумма", "tier": "Уровень",
        "segment": "Сегмент", "available": "Доступно", "pending": "Ожидает", "expired": "Сгорело",
        "debt": "Долг", "when": "Когда", "kind": "Вид", "rule": "Правило", "order": "Заказ", "amount": "Баллы",
        "usable": "Доступны с", "expires": "Сгорают", "remaining": "Остаток", "report": "Отчёт",
        "reply_target": "цель — ответить за", "platform_window": "площадка принимает ответ не позже",
        "filter_marketplace": "Площадка", "filter_kind": "Действие", "filter_stars": "Звёзды", "all": "все",
        "show": "Показать", "approve_shown": "Одобрить все показанные", "check_now": "Проверка сейчас",
        "check_ok": "пройдена (перед отправкой — ещё раз)",
        "first_shown": "Показаны первые %d из %d: уточните фильтр, чтобы увидеть остальные.",
    },
    "en": {
        "title": "loyalsync — console", "login": "Log in", "logout": "Log out", "user": "User",
        "password": "Password", "bad_login": "Wrong name or password.", "inbox": "Inbox", "tasks": "Tasks",
        "sync": "Sync", "nothing_pending": "Nothing waits for a decision.", "approve": "Approve",
        "reject": "Reject", "save_text": "Save text", "approve_selected": "Approve selected",
        "review": "Review", "pros": "Pros", "cons": "Cons", "proposed": "Proposed text",
        "age": "Review age", "days": "days", "refused": "The text was refused by the check", "approved_n": "Approved",
        "rejected_n": "Rejected", "edited": "Text saved; the action waits for a decision", "history": "History",
        "done": "Done", "no_tasks": "No open tasks.", "cost": "Cost", "stream": "Stream",
        "state": "State", "last_success": "Last success", "last_error": "Last error",
        "csrf": "The form is out of date: open the page again.", "remote": "The console answers this machine only.",
        "mode_dry": "Dry-run mode: nothing approved is sent.", "grounds": "Grounds",
        "members": "Members", "member_search": "Member key (its start) or order number", "find": "Find",
        "no_member": "Nobody found.", "orders": "Orders", "spend": "Spend", "tier": "Tier",
        "segment": "Segment", "available": "Available", "pending": "Pending", "expired": "Expired",
        "debt": "Debt", "when": "When", "kind": "Kind", "rule": "Rule", "order": "Order", "amount": "Points",
        "usable": "Usable from", "expires": "Expires", "remaining": "Remaining", "report": "Report",
        "reply_target": "target: answer within", "platform_window": "the platform takes a reply up to",
        "filter_marketplace": "Platform", "filter_kind": "Action", "filter_stars": "Stars", "all": "all",
        "show": "Show", "approve_shown": "Approve all shown", "check_now": "Check now",
        "check_ok": "passed (checked again before sending)",
        "first_shown": "The first %d of %d are shown: narrow the filter to see the others.",
    },
}


def language(accept_language: str | None) -> str:
    """The first of ru/en the browser lists (by q-value order as sent), else Russian."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("ru"):
            return "ru"
    return "ru"

"""The bot's notification texts in Russian and Ukrainian (the users' two locales)."""

# ruff: noqa: RUF001  (Cyrillic text is the point of this module)

from __future__ import annotations

from typing import Any

from examples.mluvme.models import LOCALES

#: forms (one, few, many) for Russian and Ukrainian plurals
_WORDS: dict[str, dict[str, tuple[str, str, str]]] = {
    "ru": {
        "day": ("день", "дня", "дней"),
        "message": ("сообщение", "сообщения", "сообщений"),
    },
    "uk": {
        "day": ("день", "дні", "днів"),
        "message": ("повідомлення", "повідомлення", "повідомлень"),
    },
}

TEMPLATES: dict[str, dict[str, str]] = {
    "ru": {
        "streak_reminder": (
            "🔥 Ваша серия — {days} {days_word} подряд! Напишите сегодня хотя бы одно "
            "сообщение на чешском, чтобы её не потерять."
        ),
        "streak_start": (
            "Сегодня ещё не было практики. Напишите пару фраз на чешском — начнём новую серию!"
        ),
        "daily_challenge": "💪 Ещё {left} {left_word} — и ежедневное задание выполнено!",
        "milestone": "🏆 {days} {days_word} подряд! Бонус: +{stars} ⭐",
        "weekly_report": (
            "📊 Итоги недели {start} — {end}\n"
            "Сообщений: {messages}\n"
            "Слов: {words}\n"
            "Средняя точность: {correctness}\n"
            "Активных дней: {active_days} из 7\n"
            "Серия: {streak}\n\n"
            "{recommendations}"
        ),
        "rec_start_practicing": (
            "На этой неделе не было занятий. Начните с одного сообщения сегодня!"
        ),
        "rec_practice_more_often": "Старайтесь заниматься каждый день — даже 5 минут помогают.",
        "rec_review_mistakes": "Повторите исправления в своих сообщениях: точность ниже 70%.",
        "rec_write_longer": (
            "Пишите более длинные сообщения — так вы быстрее расширите словарный запас."
        ),
        "rec_keep_going": "Отличная неделя! Продолжайте в том же духе.",
    },
    "uk": {
        "streak_reminder": (
            "🔥 Ваша серія — {days} {days_word} поспіль! Напишіть сьогодні хоча б одне "
            "повідомлення чеською, щоб її не втратити."
        ),
        "streak_start": (
            "Сьогодні ще не було практики. Напишіть кілька фраз чеською — почнімо нову серію!"
        ),
        "daily_challenge": "💪 Ще {left} {left_word} — і щоденне завдання виконано!",
        "milestone": "🏆 {days} {days_word} поспіль! Бонус: +{stars} ⭐",
        "weekly_report": (
            "📊 Підсумки тижня {start} — {end}\n"
            "Повідомлень: {messages}\n"
            "Слів: {words}\n"
            "Середня точність: {correctness}\n"
            "Активних днів: {active_days} з 7\n"
            "Серія: {streak}\n\n"
            "{recommendations}"
        ),
        "rec_start_practicing": (
            "Цього тижня не було занять. Почніть з одного повідомлення сьогодні!"
        ),
        "rec_practice_more_often": "Намагайтеся займатися щодня — навіть 5 хвилин допомагають.",
        "rec_review_mistakes": (
            "Перегляньте виправлення у своїх повідомленнях: точність нижче 70%."
        ),
        "rec_write_longer": (
            "Пишіть довші повідомлення — так ви швидше розширите словниковий запас."
        ),
        "rec_keep_going": "Чудовий тиждень! Так тримати.",
    },
}


def plural(locale: str, word: str, count: int) -> str:
    """``word`` agreeing with ``count`` (Russian and Ukrainian share the rule)."""
    one, few, many = _WORDS[_checked(locale)][word]
    tens, units = count % 100, count % 10
    if units == 1 and tens != 11:
        return one
    if 2 <= units <= 4 and not 12 <= tens <= 14:
        return few
    return many


def render(locale: str, key: str, **values: Any) -> str:
    """The ``key`` template of ``locale`` filled with ``values``."""
    return TEMPLATES[_checked(locale)][key].format(**values)


def _checked(locale: str) -> str:
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}; expected one of {', '.join(LOCALES)}")
    return locale

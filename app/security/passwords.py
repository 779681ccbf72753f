"""Password policy by length and a common-password list (OWASP ASVS 5, V6.2), not by
character classes."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from flask import current_app
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_babel import gettext as _

_COMMON = Path(__file__).with_name("common_passwords.txt")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    words = (w.strip().lower() for w in _COMMON.read_text(encoding="utf-8").splitlines())
    return frozenset(w for w in words if w and not w.startswith("#"))


def password_problem(password: str) -> str | None:
    """The reason a password is refused, in the user's language, or None when it is fine."""
    min_length = current_app.config.get("CRM_PASSWORD_MIN_LENGTH", 10)
    password = password or ""
    if len(password) < min_length:
        return _("Password must be at least %(n)d characters long.", n=min_length)
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        return _("This password is too common and easy to guess; choose another one.")
    return None


def validate_password(password: str) -> None:
    """FAB_PASSWORD_COMPLEXITY_VALIDATOR: raises with a readable reason."""
    problem = password_problem(password)
    if problem:
        raise PasswordComplexityValidationError(problem)

"""User-facing errors.

Every problem a user can fix (a bad recipe, missing data, a broken plugin) is raised as a
`GanctlError`. The CLI prints its message as one paragraph on stderr and exits with
`exit_code`; it never shows a traceback for these.
"""

from __future__ import annotations


class GanctlError(Exception):
    """A problem the user can fix. The message says what is wrong, where, and how to fix it."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(GanctlError):
    """Bad input on the command line or in a recipe (exit code 2)."""

    exit_code = 2


class RecipeError(ConfigError):
    """A recipe that cannot be read or does not validate. Carries one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PluginError(GanctlError):
    """A plugin failed to load or register, or a plugin name is unknown."""


class DataError(GanctlError):
    """A dataset that cannot be found or read."""

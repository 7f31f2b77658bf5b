"""The exception tree every Netra layer raises.

NetraError
├── ConfigError            invalid or missing configuration (exit code 2)
├── UsageError             bad command-line input or an invalid request (exit code 2)
│   └── InputFileError     a bad line or field in an input file (names file and line)
├── StoreError             the database failed or refused a write
├── CollectorError         anything a collector raises
│   ├── SourceUnavailable  the platform cannot be reached / refuses (after retries)
│   ├── CredentialMissing  a required environment variable is not set
│   └── ParseError         a page that is not the expected JSON/HTML at all
├── ModelError             a model directory is missing, tampered with or incompatible
└── TransitionError        an invalid review-queue state change (exit code 2)
"""

from __future__ import annotations


class NetraError(Exception):
    """Root of every error Netra raises on purpose."""

    exit_code: int = 1


class ConfigError(NetraError):
    """Configuration is invalid: names the file, the key and what was expected."""

    exit_code = 2


class UsageError(NetraError):
    """The user asked for something impossible or malformed."""

    exit_code = 2


class InputFileError(UsageError):
    """A bad line or field in an input file."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class StoreError(NetraError):
    """The store could not complete an operation."""


class CollectorError(NetraError):
    """Base for collector failures."""


class SourceUnavailable(CollectorError):
    """A platform could not be reached or refused the request after retries."""


class CredentialMissing(CollectorError):
    """A credential environment variable is required but not set."""

    exit_code = 2

    def __init__(self, variable: str, purpose: str = "") -> None:
        detail = f" ({purpose})" if purpose else ""
        super().__init__(f"environment variable {variable} is not set{detail}")
        self.variable = variable


class ParseError(CollectorError):
    """A response was not the JSON/HTML/XML the parser expects."""


class ModelError(NetraError):
    """A model directory is missing, from a newer version, or tampered with."""


class TransitionError(UsageError):
    """A review-queue state change that the workflow does not allow."""

"""Secrets at rest: the columns that hold channel and HIS keys are encrypted (`EncryptedText`).

Each stored value is a Fernet token (AES-128-CBC with HMAC-SHA256, from `cryptography`) under the
data keys of `HPAY_DATA_KEYS`, a comma list read through MultiFernet: the first key encrypts, every
key decrypts. To rotate: put a new key first, run `flask --app wsgi rotate-data-key` (every stored
secret is re-encrypted under the first key), then drop the old key. Outside production, when
HPAY_DATA_KEYS is unset, one key is generated on first use into `$HPAY_VAR_DIR/data-keys` (default
`var/data-keys`, mode 0600) and read from there afterwards; production refuses to start without
HPAY_DATA_KEYS.

The keys never sit in the database: a dump holds tokens only. A value that no key decrypts fails
loudly (UndecryptableSecret), never silently as plain text. Each engine carries its keyring
(`install_keyring`, done when a Runtime is built), so a process may hold databases under different
keys; an engine without one uses the keys of the environment, read as the app reads them.

Empty or short secrets are refused where they are stored (`refuse_short_secret`, also applied by the
type itself) by the one rule of app.domain.secrets: WeakSecret, 422 `weak_secret`, rather than a secret
nobody can sign with.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from app.domain.secrets import require_secret
from config.settings import VAR_DIR, ConfigurationError

DEV_KEY_FILE = VAR_DIR / "data-keys"
# Every Fernet token starts with its version byte 0x80, which is "gAAAAA" in URL-safe base64.
TOKEN_PREFIX = "gAAAAA"
_KEYRING_ATTR = "hpay_keyring"


class UndecryptableSecret(RuntimeError):
    """A stored secret that none of the configured data keys decrypts (a key missing from HPAY_DATA_KEYS)."""


def refuse_short_secret(name: str, value: str | None, min_length: int) -> str | None:
    """`value` itself (None stays None: the column is unset), or WeakSecret when empty or short."""
    return None if value is None else require_secret(name, value, min_length)


class Keyring:
    """MultiFernet over the data keys: the first encrypts, all decrypt."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ConfigurationError("at least one data key is required")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.key_count = len(keys)

    def __repr__(self) -> str:
        return f"Keyring({self.key_count} keys)"

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise UndecryptableSecret("a stored secret cannot be decrypted with HPAY_DATA_KEYS "
                                      "(is the key it was encrypted under missing?)") from None

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise UndecryptableSecret("a stored secret cannot be decrypted with HPAY_DATA_KEYS") from None

    def can_decrypt(self, token: str) -> bool:
        try:
            self.decrypt(token)
        except UndecryptableSecret:
            return False
        return True


def parse_data_keys(raw: str, source: str = "HPAY_DATA_KEYS") -> list[bytes]:
    keys = [part.strip().encode("ascii", "replace") for part in raw.split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigurationError(
                f"{source}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None
    return keys


def _development_keys(path: Path) -> list[bytes]:
    """The generated key file's keys, creating it (0600) on first use; safe when processes race to create it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(Fernet.generate_key().decode("ascii") + "\n")
            try:
                os.link(temporary, path)  # never replaces a key another process wrote first
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    return parse_data_keys(path.read_text(), source=str(path))


def load_keyring(data_keys: str, env: str, key_file: Path = DEV_KEY_FILE) -> Keyring:
    """The keyring of HPAY_DATA_KEYS; outside production, the generated key file when that is unset."""
    if data_keys.strip():
        return Keyring(parse_data_keys(data_keys))
    if env == "production":
        raise ConfigurationError("HPAY_DATA_KEYS must be set in production")
    return Keyring(_development_keys(key_file))


def environment_keyring() -> Keyring:
    """The keyring as the app builds it from the environment (HPAY_DATA_KEYS, HPAY_ENV); the migrations use it."""
    return load_keyring(os.environ.get("HPAY_DATA_KEYS", ""), os.environ.get("HPAY_ENV", "development"))


def install_keyring(engine: Engine, keyring: Keyring) -> None:
    setattr(engine.dialect, _KEYRING_ATTR, keyring)


_fallback: dict[tuple[str, str], Keyring] = {}


def keyring_for(dialect) -> Keyring:
    keyring = getattr(dialect, _KEYRING_ATTR, None)
    if keyring is not None:
        return keyring
    key = (os.environ.get("HPAY_DATA_KEYS", ""), os.environ.get("HPAY_ENV", "development"))
    if key not in _fallback:
        _fallback[key] = environment_keyring()
    return _fallback[key]


class EncryptedText(TypeDecorator):
    """A secret stored as a Fernet token; Python sees the plain text. Refuses values shorter than min_length."""

    impl = Text
    cache_ok = True

    def __init__(self, min_length: int = 1) -> None:
        super().__init__()
        self.min_length = min_length

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        refuse_short_secret("the secret", value, self.min_length)
        return keyring_for(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return keyring_for(dialect).decrypt(value)

    def process_literal_param(self, value, dialect):
        raise NotImplementedError("secrets are never rendered into SQL text")


def encrypted_columns(metadata) -> list[tuple[str, str, str]]:
    """(table, primary key column, column) for every EncryptedText column of the metadata."""
    found = []
    for table in metadata.sorted_tables:
        secret_columns = [column.name for column in table.columns if isinstance(column.type, EncryptedText)]
        if secret_columns:
            [primary_key] = list(table.primary_key.columns)  # a table of secrets has a one-column key
            found.extend((table.name, primary_key.name, name) for name in secret_columns)
    return found


def rotate_stored_secrets(engine: Engine, keyring: Keyring, metadata) -> dict[str, int]:
    """Re-encrypt every stored secret under the keyring's first key; {"table.column": rows rewritten}.

    One transaction; each row is rewritten only if it still holds the token read (a secret changed
    meanwhile was encrypted by its writer and is left alone).
    """
    quote = engine.dialect.identifier_preparer.quote
    rewritten: dict[str, int] = {}
    with engine.begin() as conn:
        for table, key, column in encrypted_columns(metadata):
            t, k, c = quote(table), quote(key), quote(column)
            rows = conn.execute(text(f"SELECT {k}, {c} FROM {t} WHERE {c} IS NOT NULL")).all()
            count = 0
            for row_id, token in rows:
                rotated = keyring.rotate(token)
                count += conn.execute(text(f"UPDATE {t} SET {c} = :new WHERE {k} = :id AND {c} = :old"),
                                      {"new": rotated, "id": row_id, "old": token}).rowcount
            rewritten[f"{table}.{column}"] = count
    return rewritten

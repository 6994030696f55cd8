"""The hook's settings, from ``$HOME/.config/qemu-errata/hook.toml``, else from ``SYSTEM_CONFIG``.

libvirt passes hooks only ``LC_ALL PATH HOME USER LOGNAME TMPDIR``, so ``HOME``
is how a host (or a test) gives its hook its own file; the system daemon passes
``HOME=/root``, so root's file, when it exists, wins over ``SYSTEM_CONFIG``, which
is then ignored entirely (no merging). Every decision's log line and
``qemu-errata hook check`` name the file used and the one ignored. Neither
file: defaults. Unknown keys, values of the wrong kind or out of range, and a
file or directory other users could write (``libvirt_hooks.trust``) are errors,
so neither a typo nor another user silently weakens the guard.
"""

from __future__ import annotations

import os
import stat

from libvirt_hooks import trust
from qemu_errata.errors import ConfigError

USER_CONFIG = os.path.join(".config", "qemu-errata", "hook.toml")
SYSTEM_CONFIG = "/etc/qemu-errata/hook.toml"
START_POLICIES = ("enforce", "warn", "ignore")
SYSLOG = "syslog"
DEFAULT_SYSFS_ROOT = "/sys"
DEFAULT_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 3600  # libvirt waits for the hook: an hour is already no guard
MAX_TIMER_FREQUENCY_HZ = (1 << 32) - 1  # CNTFRQ_EL0 holds 32 bits
MAX_CONFIG_BYTES = 64 << 10
KEYS = (
    "sysfs_root",
    "start_policy",
    "host_profile",
    "log",
    "timer_frequency_hz",
    "timeout_seconds",
)


class HookConfig:
    """The settings of one host's hook; ``path`` is the file they came from (None: defaults)."""

    __slots__ = (
        "host_profile",
        "ignored",
        "keys",
        "log",
        "path",
        "start_policy",
        "sysfs_root",
        "timeout_seconds",
        "timer_frequency_hz",
    )

    def __init__(
        self,
        *,
        path: str | None = None,
        ignored: str | None = None,
        keys: frozenset[str] = frozenset(),
        sysfs_root: str = DEFAULT_SYSFS_ROOT,
        start_policy: str = START_POLICIES[0],
        host_profile: str | None = None,
        log: str = SYSLOG,
        timer_frequency_hz: int | None = None,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.path = path
        self.ignored = ignored
        self.keys = keys  # the ones the file sets; the others have their default
        self.sysfs_root = sysfs_root
        self.start_policy = start_policy
        self.host_profile = host_profile
        self.log = log
        self.timer_frequency_hz = timer_frequency_hz
        self.timeout_seconds = timeout_seconds

    @property
    def editable(self) -> str:
        """The file to edit to change a setting: the one read, else the one to create."""
        return self.path or SYSTEM_CONFIG

    def origin(self, key: str) -> str:
        """Where ``key``'s value comes from: ``set`` (in ``path``) or ``default``.

        The one answer to that question: messages (describe) and ``hook check`` use it.
        """
        return "set" if key in self.keys else "default"

    def describe(self, key: str) -> str:
        """``key``'s value and where it comes from, for a message saying how to change it."""
        value = getattr(self, key)
        if self.origin(key) == "set":
            return f"{key} = {value!r} in {self.path}"
        if self.path is not None:
            return f"{key} is the default {value!r}: {self.path} does not set it"
        return (
            f"{key} is the default {value!r}: no hook configuration file, set it in {SYSTEM_CONFIG}"
        )

    @property
    def source(self) -> str:
        """The file the settings came from, and the one ignored, for the log and `hook check`."""
        used = self.path or f"defaults (no {USER_CONFIG} in HOME, no {SYSTEM_CONFIG})"
        return used + ("" if self.ignored is None else f"; {self.ignored} ignored")


def config_files(home: str | None) -> tuple[str | None, str | None]:
    """The file that configures the hook (None: none), and the one it shadows (None: none)."""
    candidates = [os.path.join(home, USER_CONFIG)] if home else []
    candidates.append(SYSTEM_CONFIG)
    present: list[str | None] = [path for path in candidates if os.path.lexists(path)]
    used, ignored, *_ = [*present, None, None]
    return used, ignored


def load_config(home: str | None) -> HookConfig:
    """The configuration for a hook run with ``HOME=home``; ConfigError naming the problem."""
    path, ignored = config_files(home)
    if path is None:
        return HookConfig()
    document = _read_document(path)
    unknown = sorted(set(document) - set(KEYS))
    if unknown:  # named only when it looks like a mistyped key: messages never quote a file
        key = unknown[0]
        shown = repr(key) if key.isascii() and key.isidentifier() and len(key) <= 32 else "a key"
        raise ConfigError(f"{path}: unknown key {shown} (known: {', '.join(KEYS)})")
    reader = _Reader(document, path)
    return HookConfig(
        path=path,
        ignored=ignored,
        keys=frozenset(document),
        sysfs_root=reader.sysfs_root(),
        start_policy=reader.choice("start_policy", START_POLICIES) or START_POLICIES[0],
        host_profile=reader.absolute_path("host_profile"),
        log=reader.log(),
        timer_frequency_hz=reader.whole_number("timer_frequency_hz", MAX_TIMER_FREQUENCY_HZ),
        timeout_seconds=reader.whole_number("timeout_seconds", MAX_TIMEOUT_SECONDS)
        or DEFAULT_TIMEOUT_SECONDS,
    )


def log_of_broken(home: str | None) -> str:
    """Where a configuration that load_config refused says to log (SYSLOG if it cannot tell).

    Only a ``log`` value that is itself valid, in a file that may be trusted and parsed, is
    taken: the refusal its other keys caused is then recorded where the operator looks.
    """
    path, _ = config_files(home)
    if path is None:
        return SYSLOG
    try:
        return _Reader(_read_document(path), path).log()
    except ConfigError:
        return SYSLOG


def _read_document(path: str) -> dict[str, object]:
    """The TOML document in the trusted file ``path``; ConfigError if it is none."""
    content = trust.read_trusted(path, "hook configuration", MAX_CONFIG_BYTES)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    document = read_flat_toml(text)
    if document is None:
        import tomllib  # noqa: PLC0415 (costs most of a pool decision's budget: only when needed)

        try:
            document = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, ValueError, RecursionError) as error:
            reason = error if isinstance(error, tomllib.TOMLDecodeError) else "too deep or too long"
            raise ConfigError(f"{path}: not valid TOML: {reason}") from None
    return document


def read_flat_toml(text: str) -> dict[str, object] | None:
    """The document, if it is only ``key = "string"`` and ``key = 123`` lines; else None.

    Such a file (what a hook configuration is) reads here in microseconds;
    anything else goes to tomllib, whose import alone costs most of a pool
    decision's time budget. A test checks that both read the same.
    """
    document: dict[str, object] = {}
    for raw in text.split("\n"):
        line = raw.removesuffix("\r").strip(" \t")
        if not line.replace("\t", " ").isprintable():
            return None
        if not line or line.startswith("#"):
            continue
        key, equals, value = (part.strip(" \t") for part in line.partition("="))
        if not (equals and key and key.isascii() and key.replace("-", "_").isidentifier()):
            return None
        if key in document:
            return None
        if len(value) > 1 and value[0] == value[-1] == '"' and not set('"\\') & set(value[1:-1]):
            document[key] = value[1:-1]
        elif _is_small_decimal(value):
            document[key] = int(value)
        else:
            return None
    return document


def _is_small_decimal(value: str) -> bool:
    """A TOML decimal integer short enough that no reader's digit limit applies."""
    return (
        value.isascii()
        and value.isdigit()
        and len(value) <= 18
        and (value == "0" or value[0] != "0")
    )


class _Reader:
    """Typed access to the keys of one configuration document."""

    def __init__(self, document: dict[str, object], path: str) -> None:
        self.document = document
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key} {problem}")

    def string(self, key: str) -> str | None:
        value = self.document.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "must be a string")
        return value

    def absolute_path(self, key: str) -> str | None:
        value = self.string(key)
        if value is not None and not os.path.isabs(value):
            raise self.fail(key, "must be an absolute path")
        return value

    def sysfs_root(self) -> str:
        value = self.absolute_path("sysfs_root") or DEFAULT_SYSFS_ROOT
        trust.check_path(value, "sysfs_root")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.string(key)
        if value is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}")
        return value

    def log(self) -> str:
        value = self.string("log")
        if value is None or value == SYSLOG:
            return SYSLOG
        if not os.path.isabs(value):
            raise self.fail("log", f'must be "{SYSLOG}" or an absolute file path')
        check_log_path(value)
        return value

    def whole_number(self, key: str, largest: int) -> int | None:
        value = self.document.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= largest:
            raise self.fail(key, f"must be a whole number from 1 to {largest}")
        return value


def check_log_path(path: str) -> None:
    """The log and its directories must be trusted; a link there is never followed.

    ConfigError if not: a log others can write or replace is no record.
    """
    trust.check_path(os.path.dirname(path), "log directory")
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise ConfigError(f"log {path}: cannot check: {error.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"log {path}: not a regular file (a link is never followed)")
    reason = trust.problem(status)
    if reason is not None:
        raise ConfigError(f"log {path} {reason}")

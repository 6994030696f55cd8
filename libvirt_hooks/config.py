"""The hook's settings, from ``$HOME/.config/qemu-errata/hook.toml``, else from ``SYSTEM_CONFIG``.

libvirt passes hooks only ``LC_ALL PATH HOME USER LOGNAME TMPDIR``, so ``HOME``
is how a host (or a test) gives its hook its own file. Neither file: defaults.
Unknown keys and values of the wrong kind are errors, so a typo never silently
weakens the guard.
"""

from __future__ import annotations

import os

from qemu_errata.errors import ConfigError

USER_CONFIG = os.path.join(".config", "qemu-errata", "hook.toml")
SYSTEM_CONFIG = "/etc/qemu-errata/hook.toml"
START_POLICIES = ("enforce", "warn", "ignore")
SYSLOG = "syslog"
DEFAULT_SYSFS_ROOT = "/sys"
DEFAULT_TIMEOUT_SECONDS = 10
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
        sysfs_root: str = DEFAULT_SYSFS_ROOT,
        start_policy: str = START_POLICIES[0],
        host_profile: str | None = None,
        log: str = SYSLOG,
        timer_frequency_hz: int | None = None,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.path = path
        self.sysfs_root = sysfs_root
        self.start_policy = start_policy
        self.host_profile = host_profile
        self.log = log
        self.timer_frequency_hz = timer_frequency_hz
        self.timeout_seconds = timeout_seconds

    @property
    def where(self) -> str:
        """The file to edit to change a setting."""
        return self.path or SYSTEM_CONFIG


def config_path(home: str | None) -> str | None:
    """The file that configures the hook, or None when there is none."""
    candidates = [os.path.join(home, USER_CONFIG)] if home else []
    candidates.append(SYSTEM_CONFIG)
    return next((path for path in candidates if os.path.lexists(path)), None)


def load_config(home: str | None) -> HookConfig:
    """The configuration for a hook run with ``HOME=home``; ConfigError naming the problem."""
    path = config_path(home)
    if path is None:
        return HookConfig()
    try:
        with open(path, "rb") as stream:
            text = stream.read().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    document = read_flat_toml(text)
    if document is None:
        import tomllib  # noqa: PLC0415 (costs most of a pool decision's budget: only when needed)

        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    reader = _Reader(document, path)
    return HookConfig(
        path=path,
        sysfs_root=reader.absolute_path("sysfs_root") or DEFAULT_SYSFS_ROOT,
        start_policy=reader.choice("start_policy", START_POLICIES) or START_POLICIES[0],
        host_profile=reader.absolute_path("host_profile"),
        log=reader.log(),
        timer_frequency_hz=reader.positive_int("timer_frequency_hz"),
        timeout_seconds=reader.positive_int("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS,
    )


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
        elif value.isascii() and value.isdigit() and (value == "0" or value[0] != "0"):
            document[key] = int(value)
        else:
            return None
    return document


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
            raise self.fail(key, f"must be an absolute path, not {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.string(key)
        if value is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def log(self) -> str:
        value = self.string("log")
        if value is None or value == SYSLOG:
            return SYSLOG
        if not os.path.isabs(value):
            raise self.fail("log", f'must be "{SYSLOG}" or an absolute file path, not {value!r}')
        return value

    def positive_int(self, key: str) -> int | None:
        value = self.document.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"must be a positive whole number, not {value!r}")
        return value

import json
import os
from dataclasses import dataclass, field


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    debug: bool = False
    allowed_origins: list[str] = field(default_factory=list)


def load_settings(path: str) -> Settings:
    """Read the settings file at ``path``; missing keys keep their defaults."""
    if not os.path.exists(path):
        return Settings()
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    settings = Settings()
    for key, value in data.items():
        if hasattr(settings, key):
            setattr(settings, key, value)
    return settings


def save_settings(settings: Settings, path: str) -> None:
    """Write ``settings`` to ``path`` as JSON."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(settings.__dict__, handle, indent=2)


def merged(path: str, overrides: dict) -> Settings:
    settings = load_settings(path)
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


def main() -> None:
    settings = load_settings(os.environ.get("APP_SETTINGS", "settings.json"))
    if settings.debug:
        print("debug mode on")
    print(f"serving on {settings.host}:{settings.port} with {settings.workers} workers")


if __name__ == "__main__":
    main()

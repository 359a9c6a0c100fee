"""Refresh the README's screenshots from the browser walk's (``pytest tests/test_console_walk.py``, which writes
``screenshots/walk/``): the top of a few main screens, palette-reduced so that each stays small.

    .venv/bin/python docs/screenshots/make.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "screenshots" / "walk"
HERE = Path(__file__).resolve().parent
MAIN = {  # README name: (walk screenshot, height kept in px)
    "queue-tablet.png": ("officer-tablet-zh-queue.png", 1100),
    "lead-tablet.png": ("officer-tablet-zh-leads-lead.png", 1500),
    "day-sheet.png": ("officer-desktop-zh-queue-day-mine-0.png", 900),
    "dashboard.png": ("supervisor-desktop-zh-dashboard.png", 1500),
    "alerts-quota-en.png": ("supervisor-desktop-en-alerts-kind-quota.png", 900),
    "outbox.png": ("supervisor-desktop-zh-outbox.png", 900),
    "cases.png": ("supervisor-desktop-zh-cases.png", 1100),
}


def main() -> None:
    for name, (source, height) in MAIN.items():
        path = SOURCE / source
        if not path.exists():
            print(f"skipped {name}: {path} not found (run the browser walk first)")
            continue
        image = Image.open(path).convert("RGB")
        image = image.crop((0, 0, image.width, min(height, image.height)))
        if image.width > 1000:
            image = image.resize((1000, round(image.height * 1000 / image.width)), Image.LANCZOS)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(HERE / name, optimize=True)
        print(f"{name}: {(HERE / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()

"""Emoji World's art and labels: three npm packages, fetched once with ``npm pack`` into a checked cache.

Sources (pinned versions; each tarball's sha512 is pinned here, so a tampered registry answer is refused):

- ``emoji-datasource-twitter`` 16.0.0: Twemoji art, ``img/twitter/64/*.png`` (graphics CC-BY 4.0, data MIT);
- ``emoji-datasource-google`` 16.0.0: Noto Emoji art, ``img/google/64/*.png`` (Apache 2.0, data MIT);
- ``emojibase-data`` 17.0.0: CLDR labels, ``en/compact.json`` and ``zh/compact.json`` (MIT).

The cache is ``$LVG_HOME/emoji`` (default ``~/.cache/lvg/emoji``)::

    emoji/tarballs/NAME-VERSION.tgz        optional: tarballs a user put there by hand (used, never deleted)
    emoji/NAME-VERSION/                    what was extracted from one package, plus manifest.json
    emoji/ATTRIBUTION.md                   sources, licences and attributions

A package folder appears only complete: it is extracted into a hidden temporary folder next to it, every PNG is
decoded, and the folder is renamed into place last. A downloaded tarball is checked (sha512 against the pinned value
and against npm's own ``integrity``), extracted, then deleted. When every package folder is there nothing is fetched,
so the world works offline afterwards. Only these members are extracted, as regular files at a path this module
computes (no path from the archive is used as given): ``LICENSE``, ``package.json``, ``emoji.json`` and every 64 px PNG
(all of them, so any set of categories works offline) for the art packages; ``LICENSE``, ``package.json``,
``en/compact.json`` and ``zh/compact.json`` for the labels.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

SPRITE_SIDE = 64  # the packages' img/<vendor>/64 sprites are 64 x 64 RGBA
MAX_MEMBER_BYTES = 8_000_000  # no member we extract is near this; a larger one is refused, not read


class EmojiAssetError(ValueError):
    """The emoji art or labels cannot be fetched, verified or read; the message names the package or file."""


@dataclass(frozen=True)
class Package:
    """One pinned npm package: its name, version, tarball sha512 (base64, as npm's ``integrity``) and what we keep."""

    key: str  # "twitter", "google" or "labels"
    name: str
    version: str
    sha512: str
    members: tuple[str, ...]  # regular expressions over the member path below "package/"

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def tarball_name(self) -> str:
        return f"{self.stem}.tgz"

    @property
    def integrity(self) -> str:
        return f"sha512-{self.sha512}"


def _art_members(vendor: str) -> tuple[str, ...]:
    return (r"LICENSE", r"package\.json", r"emoji\.json", rf"img/{vendor}/64/[0-9a-f][0-9a-f-]*\.png")


PACKAGES: tuple[Package, ...] = (
    Package("twitter", "emoji-datasource-twitter", "16.0.0",
            "7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ==",
            _art_members("twitter")),
    Package("google", "emoji-datasource-google", "16.0.0",
            "ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
            _art_members("google")),
    Package("labels", "emojibase-data", "17.0.0",
            "Yvgb5AWoHViHV/gq1qr5ZAarcBip+B27/ZLRsUJkbgAEaLlZ/fof9g882LTpmEpyhBNEC0m2SEmItljHsTygjA==",
            (r"LICENSE", r"package\.json", r"en/compact\.json", r"zh/compact\.json")),
)  # fmt: skip

ATTRIBUTION = """# Emoji World: sources and licences

Emoji World's images are composed of emoji art from two vendors, named with Unicode CLDR labels.

| What | npm package | Licence | Attribution |
|---|---|---|---|
| Twemoji art (style `twemoji`) | emoji-datasource-twitter 16.0.0 | graphics CC-BY 4.0; data MIT | Twemoji graphics by Twitter, Inc and other contributors, https://github.com/jdecked/twemoji, licensed under CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/) |
| Noto Emoji art (style `noto`) | emoji-datasource-google 16.0.0 | Apache License 2.0; data MIT | Noto Emoji by Google, https://github.com/googlefonts/noto-emoji, licensed under the Apache License 2.0 (https://www.apache.org/licenses/LICENSE-2.0) |
| Emoji metadata, categories, sprite packing | emoji-datasource-* 16.0.0 | MIT | emoji-data, Copyright (c) 2013 Cal Henderson, https://github.com/iamcal/emoji-data |
| English and Chinese CLDR labels | emojibase-data 17.0.0 | MIT | Emojibase, Copyright (c) 2017-2019 Miles Johnson, https://github.com/milesj/emojibase; labels from Unicode CLDR |

Images made from this art are derivative works: keep this notice with them (CC-BY 4.0 asks for attribution and
an indication that changes were made: the sprites are resized and composited onto plain backgrounds).
"""


def emoji_home(home: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``home`` when given, else ``$LVG_HOME/emoji``, else ``~/.cache/lvg/emoji``."""
    if home is not None:
        return Path(home)
    if os.environ.get("LVG_HOME"):
        return Path(os.environ["LVG_HOME"]) / "emoji"
    return Path.home() / ".cache" / "lvg" / "emoji"


@dataclass(frozen=True)
class EmojiAssets:
    """Paths of a complete cache: the two vendors' 64 px sprite folders, their ``emoji.json`` and the CLDR labels."""

    home: Path
    sprites: dict[str, Path]  # vendor key ("twitter", "google") -> folder of <hexcode>.png
    emoji_json: dict[str, Path]  # vendor key -> emoji.json
    labels: dict[str, Path]  # "en", "zh" -> compact.json
    attribution: Path

    def sprite_path(self, vendor: str, image: str) -> Path:
        return self.sprites[vendor] / image


def _package_dir(home: Path, pkg: Package) -> Path:
    return home / pkg.stem


def assets_from(home: Path, packages: tuple[Package, ...] = PACKAGES) -> EmojiAssets:
    """The :class:`EmojiAssets` of a complete cache (no checks beyond the paths; :func:`ensure_assets` makes them)."""
    by = {p.key: _package_dir(home, p) for p in packages}
    art = [k for k in by if k != "labels"]
    return EmojiAssets(
        home=home,
        sprites={k: by[k] / "img" / k / "64" for k in art},
        emoji_json={k: by[k] / "emoji.json" for k in art},
        labels={lang: by["labels"] / lang / "compact.json" for lang in ("en", "zh")},
        attribution=home / "ATTRIBUTION.md",
    )


def is_complete(home: Path, packages: tuple[Package, ...] = PACKAGES) -> bool:
    """Whether every package folder is in place (each is renamed in only after a complete, checked extraction)."""
    return (
        all((_package_dir(home, p) / "manifest.json").is_file() for p in packages)
        and (home / "ATTRIBUTION.md").is_file()
    )


def fetch_command(packages: tuple[Package, ...] = PACKAGES) -> str:
    return "npm pack " + " ".join(p.spec for p in packages)


def ensure_assets(home: str | os.PathLike | None = None, packages: tuple[Package, ...] = PACKAGES) -> EmojiAssets:
    """A complete, checked cache, fetching and extracting what is missing (nothing at all when it is complete).

    For each package missing from the cache: a tarball the user put in ``HOME/tarballs/`` is used if there, else
    ``npm pack`` downloads it into a temporary folder. Either way its sha512 must equal the pinned one; a wrong
    checksum, a truncated archive or a PNG that does not decode raises :class:`EmojiAssetError` naming the tarball and
    leaves no extracted file behind.
    """
    root = emoji_home(home)
    if is_complete(root, packages):
        return assets_from(root, packages)
    root.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        if (_package_dir(root, pkg) / "manifest.json").is_file():
            continue
        given = root / "tarballs" / pkg.tarball_name
        if given.is_file():
            _install(root, pkg, given)
            continue
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            _install(root, pkg, _npm_pack(pkg, Path(tmp), root))
    write_atomic(root / "ATTRIBUTION.md", ATTRIBUTION)
    return assets_from(root, packages)


def _npm_pack(pkg: Package, dest: Path, root: Path) -> Path:
    """Download ``pkg``'s tarball with ``npm pack`` into ``dest``; its own integrity answer must be the pinned one."""
    npm = shutil.which("npm")
    if npm is None:
        raise EmojiAssetError(
            f"npm not found: install Node.js/npm, or run `{fetch_command()}` elsewhere and put the tarballs "
            f"in {root / 'tarballs'}"
        )
    cmd = [npm, "pack", "--json", "--pack-destination", str(dest), pkg.spec]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EmojiAssetError(f"`npm pack {pkg.spec}` failed: {e}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise EmojiAssetError(
            f"`npm pack {pkg.spec}` failed ({last}); when offline, put {pkg.tarball_name} in {root / 'tarballs'}"
        )
    try:
        info = json.loads(done.stdout)[0]
        reported, filename = info["integrity"], info["filename"]
    except (ValueError, LookupError, TypeError):
        raise EmojiAssetError(f"`npm pack {pkg.spec}` printed no JSON with 'integrity' and 'filename'") from None
    if reported != pkg.integrity:
        raise EmojiAssetError(
            f"{pkg.spec}: the registry's integrity {reported} is not the pinned {pkg.integrity}; refused"
        )
    path = dest / Path(str(filename)).name
    if not path.is_file():
        raise EmojiAssetError(f"`npm pack {pkg.spec}` wrote no {path.name}")
    return path


def sha512_b64(path: Path) -> str:
    """The file's sha512, base64 (the form of npm's ``integrity`` after ``sha512-``)."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return base64.b64encode(h.digest()).decode("ascii")


def _install(root: Path, pkg: Package, tarball: Path) -> None:
    """Check ``tarball`` and extract the wanted members into ``root/STEM`` atomically."""
    got = sha512_b64(tarball)
    if got != pkg.sha512:
        raise EmojiAssetError(
            f"{tarball}: sha512 {got[:16]}... is not the pinned {pkg.sha512[:16]}... of {pkg.spec} "
            "(damaged or tampered tarball); refused"
        )
    final = _package_dir(root, pkg)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".extract-{pkg.stem}-"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
    try:
        count = _extract(tarball, tmp, pkg)
        manifest = {"package": pkg.name, "version": pkg.version, "integrity": pkg.integrity, "files": count}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        if final.exists() and not (final / "manifest.json").is_file():  # an older, incomplete folder: replaced
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError as e:
            if not (final / "manifest.json").is_file():  # not another process that finished first
                raise EmojiAssetError(f"cannot move the extracted {pkg.spec} into {final}: {e}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _extract(tarball: Path, dest: Path, pkg: Package) -> int:
    """Copy the wanted regular-file members of ``tarball`` under ``dest``; PNGs must decode. Returns the file count."""
    wanted = re.compile("|".join(f"(?:{m})" for m in pkg.members))
    count = 0
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for m in tar:
                rel = m.name[len("package/") :] if m.name.startswith("package/") else None
                if rel is None or not wanted.fullmatch(rel) or not m.isreg():
                    continue  # links, folders, devices and unlisted members are never extracted
                parts = rel.split("/")
                if any(p in ("", ".", "..") for p in parts):
                    raise EmojiAssetError(f"{tarball}: member {m.name!r} has an unsafe path; refused")
                if m.size > MAX_MEMBER_BYTES:
                    raise EmojiAssetError(f"{tarball}: member {m.name!r} is {m.size} bytes; refused")
                f = tar.extractfile(m)
                data = f.read() if f is not None else b""
                if len(data) != m.size:
                    raise EmojiAssetError(f"{tarball}: member {m.name!r} is truncated; refused")
                if rel.endswith(".png"):
                    _check_png(data, f"{tarball}: {m.name}")
                elif rel.endswith(".json"):
                    try:
                        json.loads(data.decode("utf-8"))
                    except (UnicodeDecodeError, ValueError) as e:
                        raise EmojiAssetError(f"{tarball}: {m.name} is not valid JSON ({e}); refused") from None
                out = dest.joinpath(*parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
                count += 1
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise EmojiAssetError(f"{tarball}: not a complete gzip tar archive ({e}); refused") from None
    if count == 0:
        raise EmojiAssetError(f"{tarball}: none of the expected files of {pkg.spec} are in it; refused")
    return count


def _check_png(data: bytes, where: str) -> None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise EmojiAssetError(f"{where} is not a PNG; refused")
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, EmojiAssetError):
            raise
        raise EmojiAssetError(f"{where} does not decode as a PNG ({e}); refused") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, renamed into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

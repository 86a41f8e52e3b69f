"""Emoji World: real emoji art (Twemoji and Noto) with CLDR English and Chinese names; see docs/emoji-world.md."""

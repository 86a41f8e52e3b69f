"""Shapes World: coloured shapes on a 3x3 grid of a 64x64 canvas; the contract is docs/shapes-world.md.

Its modules: the world itself (`world`), rendering (`render`), captions and their grammar (`captions`, `parse`,
`spec`, `typed`), scenes as layouts (`scene_layout`), the data streams (`dataset`, `plans`, `reading`), the held-out
split (`heldout`), the imagefolder export (`export`), the benchmark prompts (`benchmark`, `prompt_sets`) and the
referee (`judge`, `judge_check`). `plugin.WORLD` is all of it as a `lvg.worlds.World`.
"""

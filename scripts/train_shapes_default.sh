#!/usr/bin/env bash
# Train and assemble the shipped default model, models/shapes-default, from scratch.
#
#   bash scripts/train_shapes_default.sh [STAGE ...]      STAGE: tokenizer llm export eval (default: all)
#
# Every stage resumes from its checkpoint when one exists (runs/...), so the stages can be spread
# over several time-limited sessions. Uses `python -m lvg.cli`, so it also runs from a source tree
# with PYTHONPATH=. (no install needed). On one GPU this is minutes per stage; on a CPU, days.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
STAGES=${*:-tokenizer llm export eval}
OUT=models/shapes-default

resume_flag() { [ -f "$1/checkpoint/state.json" ] && echo --resume || true; }

for stage in $STAGES; do
    case $stage in
    tokenizer)
        $PY -m lvg.cli train tokenizer --config configs/tokenizer-shapes.yaml $(resume_flag runs/tokenizer-shapes)
        $PY -m lvg.cli eval tokenizer --model runs/tokenizer-shapes/image_tokenizer > runs/tokenizer-shapes/eval.json
        # the LLM trains on the shipped tokenizer folder, so put the new one there (fp16, strict reload)
        $PY - <<'PYEOF'
import torch
from lvg.tokenizers.image import ImageTokenizer
ImageTokenizer.from_pretrained("runs/tokenizer-shapes/image_tokenizer").save_pretrained(
    "models/shapes-default/image_tokenizer", dtype=torch.float16)
PYEOF
        ;;
    llm)
        $PY -m lvg.cli train llm --config configs/llm-shapes.yaml $(resume_flag runs/llm-shapes)
        ;;
    export)
        $PY -m lvg.cli export runs/llm-shapes/pipeline $OUT --dtype float16 --clip $OUT/clip
        du -sh models
        ;;
    eval)
        $PY -m lvg.cli eval shapes --model $OUT --lang both --out runs/eval-shapes
        ;;
    *)
        echo "unknown stage $stage (expected tokenizer, llm, export or eval)" >&2
        exit 2
        ;;
    esac
done

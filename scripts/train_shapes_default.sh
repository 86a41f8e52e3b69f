#!/usr/bin/env bash
# Train and assemble the shipped default model, models/shapes-default, from scratch on a CPU.
#
#   bash scripts/train_shapes_default.sh [STAGE ...]     STAGE: tokenizer plan export eval (default: all four)
#
#   tokenizer  the 16x16 image tokenizer (~40 min on one core); the planner trains beside it on the other core
#   plan       the painter on one core; the reader, then the reading LM, on the other (one torch thread
#              each); the planner too if the tokenizer stage did not already train it
#   export     assemble models/shapes-default (fp16 safetensors) with the shipped text tokenizer and CLIP
#   eval       lvg eval shapes on the public benchmark, EN and ZH
#   llm        (not in the default) the one-stage LM of configs/llm-shapes.yaml, for models without a painter
#
# Every stage resumes from its checkpoint when one exists (runs/...), so a killed run continues where it
# stopped: run the same command again. Uses `python -m lvg.cli`, so it also runs from a source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
STAGES=${*:-tokenizer plan export eval}
OUT=models/shapes-default
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per job: two jobs share the two cores without stalls

resume_flag() { [ -f "$1/checkpoint/state.json" ] && echo --resume || true; }
done_flag() { [ -f "$1" ]; }
timed() {  # timed NAME CMD...: run CMD, append its wall time to runs/wall_times.tsv
    local t0=$SECONDS
    "${@:2}"
    mkdir -p runs && printf '%s\t%d\n' "$1" $((SECONDS - t0)) >> runs/wall_times.tsv
}
planner() {
    done_flag runs/planner-shapes/planner/plan_vocab.json \
        || timed planner $PY -m lvg.cli train planner --config configs/planner-shapes.yaml $(resume_flag runs/planner-shapes)
}
reading() {
    done_flag runs/reader-shapes/detector/model.safetensors \
        || timed reader $PY -m lvg.cli train reader --config configs/reader-shapes.yaml $(resume_flag runs/reader-shapes)
    done_flag runs/reading-lm-shapes/reading_lm/plan_vocab.json \
        || timed reading-lm $PY -m lvg.cli train reading-lm --config configs/reading-lm-shapes.yaml \
            $(resume_flag runs/reading-lm-shapes)
}

for stage in $STAGES; do
    case $stage in
    tokenizer)
        planner > runs/planner.log 2>&1 &  # the planner needs no image tokenizer: use the other core now
        pid=$!
        done_flag runs/tokenizer-shapes-16x16/image_tokenizer/model.safetensors \
            || timed tokenizer $PY -m lvg.cli train tokenizer --config configs/tokenizer-shapes-16x16.yaml \
                $(resume_flag runs/tokenizer-shapes-16x16)
        $PY -m lvg.cli eval tokenizer --model runs/tokenizer-shapes-16x16/image_tokenizer \
            > runs/tokenizer-shapes-16x16/eval.json
        # the painter trains on the shipped tokenizer folder, so put the new one there (fp16, strict reload)
        $PY - <<'PYEOF'
import torch
from lvg.tokenizers.image import ImageTokenizer
ImageTokenizer.from_pretrained("runs/tokenizer-shapes-16x16/image_tokenizer").save_pretrained(
    "models/shapes-default/image_tokenizer", dtype=torch.float16)
PYEOF
        wait $pid
        ;;
    plan)
        planner &  # already done when the tokenizer stage ran: it trains there, beside the tokenizer
        pid=$!
        reading &  # the reader, then the reading LM, on one core
        rid=$!
        done_flag runs/painter-shapes/painter/model.safetensors \
            || timed painter $PY -m lvg.cli train painter --config configs/painter-shapes.yaml \
                $(resume_flag runs/painter-shapes)
        wait $pid $rid
        ;;
    export)
        $PY -m lvg.cli assemble $OUT --planner runs/planner-shapes/planner --painter runs/painter-shapes/painter \
            --image-tokenizer $OUT/image_tokenizer --clip $OUT/clip --reader runs/reader-shapes/detector \
            --reading-lm runs/reading-lm-shapes/reading_lm --temperature 0.3 --dtype float16
        du -sh models
        ;;
    eval)
        $PY -m lvg.cli eval shapes --model $OUT --lang both --out runs/eval-shapes
        ;;
    llm)
        $PY -m lvg.cli train llm --config configs/llm-shapes.yaml $(resume_flag runs/llm-shapes)
        ;;
    *)
        echo "unknown stage $stage (expected tokenizer, plan, export, eval or llm)" >&2
        exit 2
        ;;
    esac
done

#!/usr/bin/env bash
# Train and assemble the shipped default model, models/shapes-default, from scratch on a CPU.
#
#   bash scripts/train_shapes_default.sh [STAGE ...]     STAGE: tokenizer plan export refine eval (default: all five)
#
#   tokenizer  the 32x32 image tokenizer on one core; the LMs (the planner, then the reading LM: neither needs
#              images) start on the other core and go on through the next stage
#   plan       the reader, then the code painter (both need the new image tokenizer), then the GAN painter (pixels:
#              no tokenizer; the folder's painter, the code painter kept as code_painter/, --painter code), on the
#              tokenizer's core; then waits for the LMs
#              (started here if the tokenizer stage did not start them)
#   export     assemble the model folder (fp16 safetensors) with the shipped text tokenizer and CLIP
#   refine     fine-tune the folder's LMs, one core each: the planner learns prompt analysis (everyday words;
#              refusing what it cannot draw) in ten rounds (the second: more ways of asking for what it cannot
#              draw; the third: free everyday sentences; the fourth: notes, clauses, statements and requests with
#              greetings and thanks around them; the fifth: relations told from the other object; the sixth:
#              more refusals again; the seventh: longer; the eighth: half its scenes with 3-4 objects; the ninth:
#              one-each and shared attributes, "three circles: one red, one yellow, one blue"; the tenth: where
#              objects go as people say it, "under the yellow square there's a purple star"); on the
#              other core the reading LM learns off-grid layouts
#              and "how many objects", then a copy of the export's planner learns to edit layouts by instruction
#              (editor/), then six rounds with swaps drawn three times as often (configs/editor-shapes-swap.yaml),
#              then one round grown from 4 to 8 layers (block expansion; configs/editor-shapes-deep.yaml);
#              then assemble the folder again
#   eval       lvg eval shapes on the public benchmark, EN and ZH (two threads: it runs alone)
#   llm        (not in the default) the one-stage LM of configs/llm-shapes.yaml, for models without a painter
#
# Every stage resumes from its checkpoint when one exists, so a killed run continues where it stopped: run the
# same command again. Uses `python -m lvg.cli`, so it also runs from a source tree. Each stage's wall time is
# appended to $RUNS/wall_times.tsv.
#
# Where things go (environment; the defaults retrain the shipped model in place):
#   PYTHON   the interpreter (default: python)
#   CONFIGS  folder of the YAML configs (default: configs; tests point it at tiny ones)
#   RUNS     folder of the run folders and logs (default: runs)
#   OUT      the model folder written by the tokenizer and export stages (default: models/shapes-default)
#   SHIPPED  the folder whose text tokenizer and CLIP are bundled (default: models/shapes-default)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
CONFIGS=${CONFIGS:-configs}
RUNS=${RUNS:-runs}
OUT=${OUT:-models/shapes-default}
SHIPPED=${SHIPPED:-models/shapes-default}
STAGES=${*:-tokenizer plan export refine eval}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per job: two jobs share the two cores without stalls
mkdir -p "$RUNS" "$OUT"

resume_flag() { [ -f "$1/checkpoint/state.json" ] && echo --resume || true; }
done_flag() { [ -f "$1" ]; }
timed() {  # timed NAME CMD...: run CMD, append its wall time to $RUNS/wall_times.tsv; CMD's exit status
    local t0=$SECONDS rc=0
    "${@:2}" || rc=$?  # kept explicitly: set -e is off inside `a && b` lists, which would hide a failure
    [ $rc -eq 0 ] && printf '%s\t%d\n' "$1" $((SECONDS - t0)) >> "$RUNS/wall_times.tsv"
    return $rc
}
train() {  # train NAME CONFIG RUN [OVERRIDES...]: lvg train NAME, resumed when RUN holds a checkpoint
    local name=$1 config=$2 run=$3
    shift 3
    timed "$name" $PY -m lvg.cli train "$name" --config "$CONFIGS/$config" $(resume_flag "$RUNS/$run") \
        "train.out_dir=$RUNS/$run" "$@"
}
planner() {
    done_flag "$RUNS/planner-shapes/planner/plan_vocab.json" \
        || train planner planner-shapes.yaml planner-shapes "text_tokenizer=$SHIPPED/text_tokenizer"
}
reading_lm() {
    done_flag "$RUNS/reading-lm-shapes/reading_lm/plan_vocab.json" \
        || train reading-lm reading-lm-shapes.yaml reading-lm-shapes "text_tokenizer=$SHIPPED/text_tokenizer"
}
lms_pid=""
start_lms() {  # the planner, then the reading LM, on the second core (once per run of this script)
    [ -n "$lms_pid" ] && return
    { planner && reading_lm; } > "$RUNS/lms.log" 2>&1 &
    lms_pid=$!
}
ANALYSIS_ROUNDS=10  # the planner's prompt-analysis rounds (configs/planner-shapes-analysis{,2,3,...}.yaml)
analysis_run() { echo "planner-analysis$([ "$1" -gt 1 ] && echo "$1")"; }  # round k's run folder (and config suffix)
analysis_rounds() {  # round 1 starts from the exported folder, round k from round k - 1's weights
    local base="$OUT" run k
    for k in $(seq 1 $ANALYSIS_ROUNDS); do
        run=$(analysis_run "$k")
        done_flag "$RUNS/$run/planner/plan_vocab.json" \
            || train planner "${run/planner-analysis/planner-shapes-analysis}.yaml" "$run" "finetune.base=$base" || return 1
        base="$RUNS/$run/planner"
    done
}
EDITOR_ROUNDS=6  # the editor's rounds weighted to swaps (configs/editor-shapes-swap.yaml); round k draws data seed k + 2
swap_run() { echo "editor-shapes-swap$([ "$1" -gt 1 ] && echo "$1")"; }  # round k's run folder
swap_rounds() {  # round 1 starts from the editor, round k from round k - 1's weights
    local base="$RUNS/editor-shapes/planner" run k
    for k in $(seq 1 $EDITOR_ROUNDS); do
        run=$(swap_run "$k")
        done_flag "$RUNS/$run/planner/plan_vocab.json" \
            || train planner editor-shapes-swap.yaml "$run" "finetune.base=$base" "data.seed=$((k + 2))" || return 1
        base="$RUNS/$run/planner"
    done
}
deep_round() {  # the last swap round grown from 4 to 8 layers (finetune.add_layers), trained once more
    done_flag "$RUNS/editor-shapes-deep/planner/plan_vocab.json" \
        || train planner editor-shapes-deep.yaml editor-shapes-deep "finetune.base=$RUNS/$(swap_run $EDITOR_ROUNDS)/planner"
}
assemble() {  # assemble PLANNER READING_LM [OPTIONS...]: $OUT (fp16) from them and the plan stage's other runs
    local planner=$1 reading_lm=$2
    shift 2
    $PY -m lvg.cli assemble "$OUT" --planner "$planner" \
        --painter "$RUNS/gan-painter-shapes/painter" --painter-class GanPainter \
        --code-painter "$RUNS/painter-shapes/painter" \
        --image-tokenizer "$OUT/image_tokenizer" --clip "$SHIPPED/clip" \
        --reader "$RUNS/reader-shapes/detector" --reading-lm "$reading_lm" \
        --temperature 0.3 --refusal-threshold 0.2 --dtype float16 "$@"
}
wait_lms() {
    [ -z "$lms_pid" ] && return
    wait "$lms_pid" || { echo "the planner or the reading LM failed: see $RUNS/lms.log" >&2; exit 1; }
    lms_pid=""
}

for stage in $STAGES; do
    stage_t0=$SECONDS
    case $stage in
    tokenizer)
        start_lms  # the LMs need no image tokenizer: use the other core now
        done_flag "$RUNS/tokenizer-shapes-32x32/image_tokenizer/model.safetensors" \
            || train tokenizer tokenizer-shapes-32x32.yaml tokenizer-shapes-32x32
        $PY -m lvg.cli eval tokenizer --model "$RUNS/tokenizer-shapes-32x32/image_tokenizer" --num "${EVAL_NUM:-1000}" \
            > "$RUNS/tokenizer-shapes-32x32/eval.json"
        # the painter and the reader train on the model folder's tokenizer, so put the new one there (fp16)
        $PY - "$RUNS/tokenizer-shapes-32x32/image_tokenizer" "$OUT/image_tokenizer" <<'PYEOF'
import sys

import torch

from lvg.tokenizers.image import ImageTokenizer

ImageTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], dtype=torch.float16)
PYEOF
        ;;
    plan)
        start_lms  # still running from the tokenizer stage, or started now
        done_flag "$RUNS/reader-shapes/detector/model.safetensors" \
            || train reader reader-shapes-robust.yaml reader-shapes "image_tokenizer=$OUT/image_tokenizer"
        done_flag "$RUNS/painter-shapes/painter/model.safetensors" \
            || train painter painter-shapes.yaml painter-shapes "image_tokenizer=$OUT/image_tokenizer"
        done_flag "$RUNS/gan-painter-shapes/painter/model.safetensors" \
            || train gan-painter gan-painter-shapes.yaml gan-painter-shapes
        wait_lms
        ;;
    export)
        wait_lms
        assemble "$RUNS/planner-shapes/planner" "$RUNS/reading-lm-shapes/reading_lm"
        du -sh "$OUT"
        ;;
    refine)
        wait_lms
        analysis_rounds \
            > "$RUNS/refine-planner.log" 2>&1 &
        refine_pid=$!
        { done_flag "$RUNS/reading-lm-offgrid/reading_lm/plan_vocab.json" \
            || train reading-lm reading-lm-shapes-offgrid.yaml reading-lm-offgrid "finetune.base=$OUT"; } \
            && { done_flag "$RUNS/editor-shapes/planner/plan_vocab.json" \
            || train planner editor-shapes.yaml editor-shapes "finetune.base=$OUT"; } \
            && swap_rounds && deep_round \
            || { echo "the reading LM's refinement or the editor failed" >&2; exit 1; }
        wait "$refine_pid" || { echo "the planner's refinement failed: see $RUNS/refine-planner.log" >&2; exit 1; }
        assemble "$RUNS/$(analysis_run $ANALYSIS_ROUNDS)/planner" "$RUNS/reading-lm-offgrid/reading_lm" \
            --editor "$RUNS/editor-shapes-deep/planner"
        ;;
    eval)
        wait_lms
        OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 $PY -m lvg.cli eval shapes --model "$OUT" --lang both --out "$RUNS/eval-shapes"
        ;;
    llm)
        train llm llm-shapes.yaml llm-shapes
        ;;
    *)
        echo "unknown stage $stage (expected tokenizer, plan, export, refine, eval or llm)" >&2
        exit 2
        ;;
    esac
    printf 'stage %s\t%d\n' "$stage" $((SECONDS - stage_t0)) >> "$RUNS/wall_times.tsv"
done
wait_lms  # a run of the tokenizer stage alone still finishes the LMs it started

#!/usr/bin/env bash
# The long CPU run behind resnet14-cifar10 (see ../README.md). Start or continue it from the
# project root:  bash models/resnet14-cifar10/long-run/run.sh
# It resumes from resume.pt when that exists; stop it at any time (Ctrl-C or kill).
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=models/resnet14-cifar10/long-run
resume=()
[ -f "$here/resume.pt" ] && resume=(--resume)
exec .venv/bin/python -m hdlgen.nn.compress resnet14 --data "${DATA:-../shared/datasets}" --dataset cifar10 \
    --out "$here" --rates 0.5 --method thinet --mode layer --scope all \
    --epochs 3,2,40 --act-epochs 8 --threads 1 --eval-images 1000 --checkpoint-minutes 10 --log-every 50 \
    --settings '{"batch_size": 128, "lr": 0.002, "prune_lr": 0.001, "act_lr": 0.002, "binary_lr": 0.001}' \
    "${resume[@]}" "$@"

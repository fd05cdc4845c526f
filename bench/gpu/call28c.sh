#!/usr/bin/env bash
# call28b.sh for a short lease: ViT-B/16 batch 1 only (the tests, the tview model and the ViT compare as in call28b).
SHORT=1 exec bash "$(dirname "${BASH_SOURCE[0]}")/call28b.sh" "$@"

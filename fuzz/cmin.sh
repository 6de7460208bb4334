#!/usr/bin/env bash
# Minimises what a fuzzing run found into the committed corpus:
#   bash fuzz/cmin.sh <target>
# afl-cmin over out/<target>/default/queue plus the current corpus keeps the
# smallest input for each coverage tuple; the survivors replace
# corpus/<target>, named by content hash (short, stable, no ':' from AFL's
# names). Uses AFL++'s afl-cmin.awk: the Python afl-cmin that `cargo afl
# cmin` runs here recorded no tuples for these stdin targets.
set -euo pipefail
cd "$(dirname "$0")"
target=$1
afl_bin=$(ls -d "$HOME"/.local/share/afl.rs/rustc-*/afl.rs-*/afl/bin | tail -1)
work=cmin/$target
rm -rf "$work" "$work.in"
mkdir -p "$work.in"
cp out/"$target"/default/queue/id:* "$work.in"/
if [ -d corpus/"$target" ]; then cp corpus/"$target"/* "$work.in"/ 2>/dev/null || true; fi
AFL_SKIP_CPUFREQ=1 AFL_PATH="$afl_bin" PATH="$afl_bin:$PATH" \
  "$afl_bin"/afl-cmin.awk -i "$work.in" -o "$work" -- target/release/"$target" >"$work.log" 2>&1
tail -2 "$work.log"
rm -rf corpus/"$target"
mkdir -p corpus/"$target"
for f in "$work"/*; do
  cp "$f" corpus/"$target"/"$(sha1sum "$f" | cut -c1-16)"
done
echo "corpus/$target: $(ls corpus/"$target" | wc -l) files, $(cat corpus/"$target"/* | wc -c) bytes"

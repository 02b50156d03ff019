#!/usr/bin/env bash
# WordNet 3.0 for the EDA baseline, without nltk's downloader (its server is unreachable offline).
# Idempotent: installs Debian's wordnet-base + wordnet-sense-index when /usr/share/wordnet is missing, then
# lays the files out as nltk wants them: <target>/corpora/wordnet/, plus the `lexnames` file that Debian
# ships only as the man page lexnames(5WN).
#   Usage: scripts/setup_wordnet.sh [target]   (default: ${GPT3MIX_HF_CACHE:-~/.cache/gpt3mix_hf}/nltk_data,
#   where gpt3mix_hf.experiment.baselines.eda looks; elsewhere, point NLTK_DATA at the target)
set -euo pipefail

target="${1:-${GPT3MIX_HF_CACHE:-$HOME/.cache/gpt3mix_hf}/nltk_data}"
corpus="$target/corpora/wordnet"
if [ -s "$corpus/lexnames" ] && [ -s "$corpus/data.noun" ]; then
    exit 0
fi

source_dir=/usr/share/wordnet
if [ ! -s "$source_dir/data.noun" ] || [ ! -s "$source_dir/index.sense" ]; then
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index \
        || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index; }
fi
man_page=/usr/share/man/man5/lexnames.5WN.gz
if [ ! -s "$man_page" ]; then
    echo "setup_wordnet.sh: $man_page is missing (the wordnet-base package ships it; is man-db excluding man pages?)." >&2
    exit 1
fi

mkdir -p "$(dirname "${target%/}")"
staging="$(mktemp -d "${target%/}.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/corpora/wordnet"
for name in data.adj data.adv data.noun data.verb index.adj index.adv index.noun index.verb index.sense \
            adj.exc adv.exc noun.exc verb.exc cntlist.rev; do
    cp "$source_dir/$name" "$staging/corpora/wordnet/$name"
done
# lexnames: "NN<TAB>name<TAB>pos" (pos 1 noun, 2 verb, 3 adj, 4 adv), from the man page's table.
zcat "$man_page" | awk -F'\t' '
    /^[0-9][0-9]\t/ {
        name = $2; gsub(/ +$/, "", name); split(name, parts, ".")
        pos = (parts[1] == "noun") ? 1 : (parts[1] == "verb") ? 2 : (parts[1] == "adj") ? 3 : 4
        printf "%s\t%s\t%d\n", $1, name, pos
    }' > "$staging/corpora/wordnet/lexnames"
lines="$(wc -l < "$staging/corpora/wordnet/lexnames")"
if [ "$lines" -ne 45 ]; then
    echo "setup_wordnet.sh: expected 45 lexnames lines from $man_page, got $lines." >&2
    exit 1
fi
mkdir -p "$target/corpora"
rm -rf "$corpus"
mv "$staging/corpora/wordnet" "$corpus"
echo "WordNet 3.0 is in $corpus"

#!/bin/sh
# rpcgen.sh INPUT.x OUT.h OUT.c
# rpcgen writes the input's path into the #include of the C file it makes;
# running it on a copy in the output folder keeps build paths out of it.
set -e
in=$1 outh=$2 outc=$3
dir=$(dirname "$outh")
base=$(basename "$in")
cp "$in" "$dir/$base"
cd "$dir"
rm -f "$(basename "$outh")" "$(basename "$outc")"
rpcgen -h -o "$(basename "$outh")" "$base"
rpcgen -c -o "$(basename "$outc")" "$base"

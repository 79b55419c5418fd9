#!/bin/bash
# Dev side: builds one folder holding everything the module's GPU suite needs on the GPU machine
# (the benchmark's self-contained publish, whose native libraries the module links to; a .NET
# runtime; PowerShell; Pester; the built module) and packs it with ../shared/device/pack.sh.
#   bash tools/gpu/pack-module-suite.sh   (from the project root, after build.ps1 Build)
set -euo pipefail
out=out/gpu-suite
rm -rf "$out" && mkdir -p "$out"
dotnet publish src/HeteroBatch.Bench -c Release -r linux-x64 --self-contained -o "$out" > /dev/null
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
mkdir -p "$out/dotnet/host/fxr" "$out/dotnet/shared"
cp "$dotnet_root/dotnet" "$out/dotnet/"
cp -r "$dotnet_root/host/fxr/." "$out/dotnet/host/fxr/"
cp -r "$dotnet_root/shared/Microsoft.NETCore.App" "$out/dotnet/shared/"
pwsh_tool=$(ls -d ~/.nuget/packages/powershell/*/tools/net*/any/unix | sort | tail -1)
cp -r "$pwsh_tool" "$out/pwsh"
cp -r "$(ls -d ~/.nuget/packages/pester/5.7.1/tools)" "$out/pester"
mkdir -p "$out/module"
(cd out/HeteroBatch && tar --exclude=./runtimes -cf - .) | tar -C "$out/module" -xf -
mkdir -p "$out/module/runtimes/linux-x64/native"
for so in out/HeteroBatch/runtimes/linux-x64/native/*.so; do
  ln -s "../../../../$(basename "$so")" "$out/module/runtimes/linux-x64/native/$(basename "$so")"
done
bash ../shared/device/pack.sh "$out"

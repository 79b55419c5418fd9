# Every ```powershell block of README.md runs as written, in order, in a fresh folder and a new shell.
# A block whose first line is "# readme-test: skip (<why>)" needs a GPU or another host and is left out.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $script:readme = Join-Path $PSScriptRoot '../README.md'
    $script:blocks = [regex]::Matches((Get-Content -Raw $readme), '(?ms)^```powershell\r?\n(.*?)^```') | ForEach-Object { $_.Groups[1].Value }
}

Describe 'README' {
    It 'has PowerShell blocks, some marked as needing a GPU or another host' {
        $blocks.Count | Should -BeGreaterOrEqual 3
        @($blocks | Where-Object { $_ -match '^# readme-test: skip \(.+\)' }).Count | Should -BeGreaterOrEqual 1
    }

    It 'runs every block that is not marked, in order, in a fresh folder' {
        $run = @($blocks | Where-Object { $_ -notmatch '^# readme-test: skip \(' })
        $dir = Join-Path ([IO.Path]::GetTempPath()) ("hb-readme-" + [guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory (Join-Path $dir 'out') | Out-Null
        $link = Join-Path $dir 'out/HeteroBatch'
        try {
            # the built module where the README's commands expect it (./out/HeteroBatch after a build)
            New-Item -ItemType SymbolicLink -Path $link -Target (Split-Path $env:HETEROBATCH_TEST_MODULE) | Out-Null
            $store = Join-Path $dir 'store'
            $script = "`$ErrorActionPreference = 'Stop'; `$env:HETEROBATCH_PROFILE_PATH = '$store'; Set-Location '$dir'`n" +
                "Import-Module ./out/HeteroBatch/HeteroBatch.psd1`n" +
                (($run | ForEach-Object -Begin { $i = 0 } -Process { $i++; "Write-Output '== block $i'`n$_" }) -join "`n") +
                "`nWrite-Output '== done'"
            $r = Invoke-ChildPwsh $script
            $r.ExitCode | Should -Be 0 -Because "$($r.Stdout)`n$($r.Stderr)"
            $r.Stdout | Should -Match '== done'
            foreach ($i in 1..$run.Count) { $r.Stdout | Should -Match "== block $i" }
            # what the blocks make: the charts
            Test-Path (Join-Path $dir 'throughput.png') | Should -BeTrue
            Test-Path (Join-Path $dir 'run.png') | Should -BeTrue
        }
        finally {
            # the link first, on its own (never through it into the built module)
            if (Test-Path $link) { [IO.Directory]::Delete($link) }
            Remove-Item $dir -Recurse -Force -ErrorAction Ignore
        }
    }
}

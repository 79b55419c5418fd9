# Compute units beyond one CPU: groups, accelerators that are absent here, another ONNX Runtime build.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:moduleDir = Split-Path $env:HETEROBATCH_TEST_MODULE
}

Describe 'CPU groups' {
    It 'gives one unit per processor with -CpuGroup Core, each pinned to its own' {
        $units = Get-ComputeUnit -CpuGroup Core
        $units.Count | Should -Be ([Environment]::ProcessorCount)
        $units | ForEach-Object { $_.Cores | Should -Be 1 }
        ($units.Processors | Select-Object -Unique).Count | Should -Be $units.Count
        foreach ($u in $units) {
            $w = [HeteroBatch.ModuleContext]::Current.Workers.For($u)
            $w.Affinity | Should -Be @($u.Processors[0])
        }
    }

    It 'keeps a unit''s fingerprint stable, and changes it when the cores change' {
        $a = Get-ComputeUnit -CpuGroup Core | Select-Object -First 1
        $b = Get-ComputeUnit -CpuGroup Core | Select-Object -First 1
        $a.Fingerprint | Should -Be $b.Fingerprint
        $whole = Get-ComputeUnit | Where-Object Id -EQ cpu
        $whole.Fingerprint | Should -Not -Be $a.Fingerprint
    }

    It 'keeps CPU units at Fp32 whatever -Precision asks, and shows the precision' {
        $units = Get-ComputeUnit -Precision Fp16 -ListAvailable
        ($units | Where-Object Kind -EQ Cpu).Precision | Should -Be @('Fp32')
        ($units | Where-Object Provider -EQ CUDA).Precision | Should -Not -Contain 'Fp32'
        $units | Format-Table | Out-String | Should -Match 'Precision'
    }

    It 'gives TF32 GPU units a fingerprint of their own' {
        $plain = Get-ComputeUnit -ListAvailable | Where-Object Provider -EQ CUDA | Select-Object -First 1
        $tf32 = Get-ComputeUnit -ListAvailable -AllowTf32 | Where-Object Provider -EQ CUDA | Select-Object -First 1
        $tf32.AllowTf32 | Should -BeTrue
        $plain.AllowTf32 | Should -BeFalse
        $tf32.Fingerprint | Should -Not -Be $plain.Fingerprint
        (Get-ComputeUnit -AllowTf32 | Where-Object Kind -EQ Cpu).AllowTf32 | Should -Not -Contain $true
    }

    It 'finds units again by id, with wildcards' {
        (Get-ComputeUnit -CpuGroup Core -Id 'cpu*').Count | Should -Be ([Environment]::ProcessorCount)
        Get-ComputeUnit -Id 'nothing*' | Should -BeNullOrEmpty
    }
}

Describe 'TensorRT' {
    It 'lists TensorRT GPUs only where they start, with the reason under -ListAvailable' {
        if (Get-ComputeUnit -TensorRT | Where-Object Provider -EQ TensorRT) { Set-ItResult -Skipped -Because 'TensorRT runs here' }
        Get-ComputeUnit -TensorRT | Where-Object Kind -EQ Gpu | Should -BeNullOrEmpty
        $trt = Get-ComputeUnit -TensorRT -ListAvailable | Where-Object Kind -EQ Gpu
        $trt.Provider | Should -Contain ([HeteroBatch.Engine.Units.ExecutionProvider]::TensorRT)
        $trt[0].Reason | Should -Match 'TensorRT'
    }
}

Describe 'GPU decoding' {
    It 'says on each GPU unit why that GPU cannot decode JPEGs, and nothing where it can' {
        $gpu = Get-ComputeUnit -ListAvailable | Where-Object Kind -EQ Gpu | Select-Object -First 1
        $why = [HeteroBatch.Engine.Data.Gpu.GpuJpegDecoder]::WhyUnavailable(0)
        $gpu.GpuDecodeReason | Should -Be $why
        if ($null -eq $why) { Set-ItResult -Skipped -Because 'nvJPEG and a GPU are here' }
        $gpu.GpuDecodeReason | Should -Match 'libnvjpeg|libcudart|libnpp|no GPU|not device'
        ($gpu | ConvertTo-Json | ConvertFrom-Json).GpuDecodeReason | Should -Be $why
    }
}

Describe 'Another ONNX Runtime build (HETEROBATCH_ORT_PATH)' {
    It 'loads the native library from the folder it names' {
        $ort = Join-Path $TestDrive 'ort'
        New-Item -ItemType Directory $ort | Out-Null
        Copy-Item (Join-Path $moduleDir 'runtimes/linux-x64/native/libonnxruntime.so') $ort
        Copy-Item (Join-Path $moduleDir 'runtimes/linux-x64/native/libonnxruntime_providers_shared.so') $ort
        $r = Invoke-ChildPwsh "`$env:HETEROBATCH_ORT_PATH = '$ort'; Import-Module '$env:HETEROBATCH_TEST_MODULE'; `$null = Get-ComputeUnit; (Get-Content /proc/self/maps | Select-String 'libonnxruntime.so' | Select-Object -First 1).Line"
        $r.ExitCode | Should -Be 0
        $r.Stdout | Should -Match ([regex]::Escape("$ort/libonnxruntime.so"))
        $r.Stderr | Should -BeNullOrEmpty
    }

    It 'refuses, at import, a folder without ONNX Runtime (OrtPathInvalid)' {
        $r = Invoke-ChildPwsh "`$env:HETEROBATCH_ORT_PATH = '$TestDrive/nothing-here'; try { Import-Module '$env:HETEROBATCH_TEST_MODULE' -ErrorAction Stop; 'imported' } catch { `$_.Exception.Message }"
        $r.Stdout | Should -Match 'HETEROBATCH_ORT_PATH'
        $r.Stdout | Should -Not -Match '^imported$'
    }

    It 'says, under -ListAvailable, how to get OpenVINO units' {
        $ov = Get-ComputeUnit -ListAvailable | Where-Object Provider -EQ OpenVINO
        $ov.Available | Should -Not -Contain $true
        $ov[0].Reason | Should -Match 'HETEROBATCH_EP_LIBRARIES'
        $ov[0].Reason | Should -Match 'pip install onnxruntime-ep-openvino'
    }
}

Describe 'OpenVINO plugin libraries (HETEROBATCH_EP_LIBRARIES)' {
    BeforeAll {
        # what Get-ComputeUnit -ListAvailable says in a new shell whose HETEROBATCH_EP_LIBRARIES names $Library
        function script:Get-OpenVinoUnits([string] $Library) {
            $r = Invoke-ChildPwsh "`$env:HETEROBATCH_EP_LIBRARIES = '$Library'; Import-Module '$env:HETEROBATCH_TEST_MODULE'; Get-ComputeUnit -ListAvailable | Where-Object Provider -EQ OpenVINO | ConvertTo-Json -Depth 3 -Compress"
            $r.ExitCode | Should -Be 0
            @($r.Stdout | ConvertFrom-Json)
        }
        # the fake OpenVINO plugin, built here with the machine's C compiler against ONNX Runtime's header
        $script:cc = Get-Command cc, gcc -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        $version = [Microsoft.ML.OnnxRuntime.OrtEnv]::Instance().GetVersionString()
        $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path $HOME '.nuget/packages' }
        $script:include = 'microsoft.ml.onnxruntime', 'microsoft.ml.onnxruntime.gpu.linux' | ForEach-Object {
            foreach ($b in 'build', 'buildTransitive') { Join-Path $packages "$_/$version/$b/native/include" }
        } | Where-Object { Test-Path (Join-Path $_ 'onnxruntime_ep_c_api.h') } | Select-Object -First 1
        $script:fake = Join-Path $TestDrive 'libfake_openvino_ep.so'
        if ($IsLinux -and $cc -and $include) {
            & $cc.Source -shared -fPIC -O1 -I $include -o $fake (Join-Path $PSScriptRoot 'HeteroBatch.Engine.Tests/Plugins/fake_openvino_ep.c')
        }
    }

    It 'lists igpu0 as unavailable with ONNX Runtime''s reason where the library is missing' {
        $missing = Join-Path $TestDrive 'no-such/onnxruntime_providers_openvino_plugin.so'
        $ov = Get-OpenVinoUnits $missing
        $ov.Count | Should -Be 1
        $ov[0].Id | Should -Be 'igpu0'
        $ov[0].Available | Should -BeFalse
        $ov[0].Reason | Should -Match ([regex]::Escape("the plugin library '$missing' did not load: [ErrorCode:Fail] Failed to load library"))
        $ov[0].Reason | Should -Match 'pip install onnxruntime-ep-openvino'
    }

    It 'lists igpu0 as unavailable with ONNX Runtime''s reason where the file is not a provider' {
        $notProvider = Join-Path $TestDrive 'onnxruntime_providers_openvino_plugin.so'
        Set-Content $notProvider 'not a shared library'
        $ov = Get-OpenVinoUnits $notProvider
        $ov.Count | Should -Be 1
        $ov[0].Available | Should -BeFalse
        $ov[0].Reason | Should -Match ([regex]::Escape("the plugin library '$notProvider' did not load: "))
    }

    It 'lists the fake plugin''s GPU, NPU and CPU as units, the CPU one overlapping the CPU units' {
        if (-not (Test-Path $fake)) { Set-ItResult -Skipped -Because 'no C compiler or no onnxruntime_ep_c_api.h to build the fake plugin' }
        $ov = Get-OpenVinoUnits $fake
        $ov.Id | Should -Be @('ovcpu0', 'igpu0', 'npu0')
        $ov.Available | Should -Not -Contain $false
        ($ov | Where-Object Id -EQ igpu0).Name | Should -Be 'OpenVINO GPU'
        ($ov | Where-Object Id -EQ ovcpu0).Processors.Count | Should -Be ([Environment]::ProcessorCount)
        $r = Invoke-ChildPwsh "`$env:HETEROBATCH_EP_LIBRARIES = '$fake'; Import-Module '$env:HETEROBATCH_TEST_MODULE'; try { Get-ComputeUnit -Id cpu, ovcpu0 | Invoke-Profile -Model tinynet -MaxBatchSize 1 -Concurrent -ErrorAction Stop | Out-Null; 'profiled' } catch { `$_.FullyQualifiedErrorId }"
        $r.Stdout | Should -Match '^UnitsOverlap'
    }
}

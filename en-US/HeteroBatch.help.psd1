# Help text for the HeteroBatch cmdlets. build.ps1 turns it into MAML (HeteroBatch.dll-Help.xml),
# taking syntax, types and pipeline binding from the cmdlets themselves. Every parameter needs a line.
@{
    'Get-ComputeUnit' = @{
        Synopsis    = 'Lists the compute units of this machine: CPU core groups, NVIDIA GPUs and OpenVINO devices.'
        Description = 'Finds the units that can run a share of a batch. The CPU is one unit (cpu) by default, or several with -CpuGroup. An NVIDIA GPU is listed only if a CUDA session really starts on it; an OpenVINO device only if the loaded ONNX Runtime has that provider. Units that cannot run here are left out unless -ListAvailable is given, and then carry the reason. Each unit has a Fingerprint (hardware, provider, cores, runtime version) that keys stored profiles.'
        Parameters  = @{
            Endpoint    = 'Inference servers that speak the Open Inference Protocol (NVIDIA Triton, OpenVINO Model Server, KServe/MLServer, or Start-InferenceServer): grpc://host:port (grpcs:// with TLS) for the server''s gRPC port, http://host:port (https://) for REST where gRPC is not offered; one remote unit each (remote0, remote1, ...), listed instead of this machine''s units. A remote unit runs a model the server serves under the same name; it is profiled, planned and failed over like any unit, its times include the network, and tensors go as binary data (raw_input_contents over gRPC; over REST where GET /v2 lists the binary_tensor_data extension or lists no extensions, JSON numbers where it lists others but not that one, as MLServer does). A server that is not ready is a RemoteUnavailable error (-ListAvailable lists it with the reason). Bearer token: -Token or -Credential, else the module''s default (Set-HeteroBatchOption -RemoteToken; $env:HETEROBATCH_REMOTE_TOKEN at import).'
            Model         = 'The model the servers at -Endpoint are to run, by the name they serve it under. Each ready server is then asked for the model''s metadata and one sample of zeros (where every input''s shape is fixed); one that cannot run it is not available: RemoteModelNotFound for a model it does not serve, RemoteTensorsUndeclared where its metadata declares no inputs or outputs (declare them in the model''s settings on the server), RemoteUnitFailed where it answers the sample with an error (-ListAvailable lists it with the reason).'
            Token         = 'The bearer token the servers at -Endpoint require, as a SecureString. It is kept with each remote unit (shown as ********, left out of JSON) and sent on every request but the health checks. Without it the module''s default is used (Get-HeteroBatchOption). TokenConflict with -Credential too; TokenWithoutEndpoint without -Endpoint.'
            Credential    = 'The same as -Token, taken from a credential''s password (Get-Credential, or a vault); the user name is not used.'
            EncodedModel  = 'The model at the servers of -Endpoint that takes a file job''s images as files, where it is not named after the model with _encoded (the rule: beside model M, a model M_encoded with one BYTES input, an image file a sample, and M''s outputs; Start-InferenceServer serves it). Name a Triton ensemble that decodes here. Kept with each remote unit; a job whose model''s outputs are not that model''s decodes the unit''s share here and says why (RemoteDecodeUnavailable). EncodedModelWithoutEndpoint without -Endpoint.'
            Id            = 'Unit ids to return, such as cpu, cpu0 or gpu1. Wildcards are allowed.'
            CpuGroup      = 'How to split the CPU into units: All (one unit on every processor, the default), Core (one unit per processor), Numa (one per NUMA node), CoreType (performance and efficiency cores of a hybrid CPU), or a number of equal groups. Each group runs on its own pinned worker thread.'
            ListAvailable = 'Also list units that cannot run here (Available is False), with the Reason: for example a CUDA library that is not found.'
            Precision     = 'The arithmetic GPU units run models in: Fp32 (the default), Tf32 (TF32 tensor-core math on the float32 model) or Fp16 (the model converted to fp16, inputs and outputs still float32; converted once and cached by content hash). CPU units stay Fp32. Each precision is a unit of its own (its own fingerprint and profiles); see about_HeteroBatch.'
            AllowTf32     = 'The same as -Precision Tf32: let NVIDIA GPU units use TF32 tensor-core math (faster convolutions and matrix products, with about 10 bits of mantissa). The units get their own fingerprint, so their profiles never mix with full-precision ones.'
            TensorRT      = 'Run NVIDIA GPUs through ONNX Runtime''s TensorRT provider (CUDA takes what TensorRT cannot), where TensorRT''s libraries load; such units have their own fingerprint, so their profiles do not mix with CUDA ones.'
        }
        Examples    = @(
            @{ Code = 'Get-ComputeUnit'; Remarks = 'The units a plan can use: the whole CPU as one unit, and every NVIDIA GPU where CUDA starts.' }
            @{ Code = 'Get-ComputeUnit -CpuGroup Core'; Remarks = 'One unit per processor (cpu0, cpu1, ...), each pinned to its core.' }
            @{ Code = 'Get-ComputeUnit -Precision Fp16'; Remarks = 'CPU units at Fp32 and every NVIDIA GPU at Fp16: a plan over them mixes precisions.' }
            @{ Code = 'Get-ComputeUnit -ListAvailable -Verbose'; Remarks = 'Also shows GPUs and OpenVINO devices that cannot run here and why; -Verbose shows each probe.' }
        )
    }
    'Invoke-Profile' = @{
        Synopsis    = 'Measures a model on each compute unit at a schedule of batch sizes, and stores the performance tables.'
        Description = 'For each unit from the pipeline (default: the units of Get-ComputeUnit), runs the model at batch sizes 1, 2, 3, then 2^n-1, 2^n and 2^n+1 up to -MaxBatchSize, or at the sizes of -BatchSize. Each size gets warm-up runs, then timed runs until the median is stable (95% confidence within 3%) or -SecondsPerSize is spent. A size that fails (out of memory, for example) ends the schedule for that unit: the sizes that ran are kept and MaxBatchSize records the largest. Profiles are stored as JSON, one file per model and unit, merged with earlier measurements, unless -NoStore is given. Ctrl+C stops promptly; what was stored stays consistent.'
        Parameters  = @{
            Unit           = 'The units to measure, usually piped from Get-ComputeUnit. Without it, the units of Get-ComputeUnit are measured.'
            Model          = 'A built-in model name (see Get-InferenceModel; tab completion offers them) or the path of an .onnx file.'
            BatchSize      = 'The batch sizes to measure, instead of the default schedule.'
            MaxBatchSize   = 'The largest batch size of the default schedule. Default: 32 for CPU units, 512 for GPUs.'
            SecondsPerSize = 'The most time to spend sampling one batch size once three timed runs are in. Default: 1.5.'
            ProfilePath    = 'The profile store folder. Default: Get-HeteroBatchOption''s ProfileStorePath ($env:HETEROBATCH_PROFILE_PATH at import), else HeteroBatch/profiles in the user data folder.'
            NoStore        = 'Return the profiles without storing them.'
            Concurrent     = 'Measure all the units at the same time, as a plan runs them: units share memory bandwidth, caches and the cores that feed GPUs, so a unit measured alone is predicted faster than it runs beside the others. A unit that finishes its schedule keeps running its largest batch as load until all are done. Each profile lists the units in MeasuredAlongside.'
        }
        Examples    = @(
            @{ Code = 'Get-ComputeUnit | Invoke-Profile -Model mobilenet'; Remarks = 'Measures MobileNet on every unit and stores the tables.' }
            @{ Code = 'Get-ComputeUnit -CpuGroup Core | Invoke-Profile -Model tinynet -BatchSize 1,8,64 -Verbose'; Remarks = 'Measures three batch sizes on each core; -Verbose prints each measurement.' }
            @{ Code = 'Invoke-Profile -Model ./model.onnx -NoStore | Select-Object -ExpandProperty Table'; Remarks = 'Measures your own model without storing it and prints the performance table.' }
            @{ Code = 'Get-ComputeUnit -CpuGroup Core | Invoke-Profile -Model mobilenet -Concurrent'; Remarks = 'Measures every core while the others run too, so plans predict the side-by-side speed.' }
        )
    }
    'Get-BatchPlan' = @{
        Synopsis    = 'Splits a batch across compute units from their performance tables so that the whole batch finishes soonest.'
        Description = 'Builds a cost model per unit from its profile (interpolated between measured batch sizes; shares larger than the largest batch that ran are cut into sub-batches) and chooses shares b1..bk summing to the batch that minimise the time of the slowest unit. Optimal finds the exact optimum of that model; Greedy is the seed work''s algorithm; Proportional, Even and Single are baselines. No plan predicts worse than the best single unit: units that would not help get nothing and are listed in UnusedUnits. Profiles come from the pipeline or, with -Model, from the store (the most recently measured units of this machine that do not share processors, or those named by -Unit).'
        Parameters  = @{
            NoCalibration = 'Plan from the profiles alone. By default a plan scales each unit''s profiled times by how its last runs of the model compared with their predictions (a weighted median of up to 8 runs that takes effect when 3 agree, recorded by Invoke-PartitionedInference in the profile store; see about_HeteroBatch); the plan''s Calibrated and CostsFrom say which. With Invoke-PartitionedInference it also keeps this run from being recorded.' 
            Profile     = 'Profiles to plan from, piped from Invoke-Profile or Get-PerformanceProfile.'
            Model       = 'Plan from the stored profiles of this model: a built-in name or an .onnx path.'
            BatchSize   = 'The number of samples to split. Must be at least 1.'
            Unit        = 'Only these units (ids; wildcards allowed).'
            Algorithm   = 'Optimal (exact min-max, the default), Greedy (each next sample to the unit that would finish it soonest), Proportional (by best measured throughput), Even (equal shares) or Single (the best unit alone).'
            EachSubset  = 'Emit one plan for every non-empty subset of the units, to show what each unit adds.'
            ProfilePath = 'The profile store folder (with -Model). Default: Get-HeteroBatchOption''s ProfileStorePath ($env:HETEROBATCH_PROFILE_PATH at import), else the user data folder.'
        }
        Examples    = @(
            @{ Code = 'Get-BatchPlan -Model vgg-16 -BatchSize 100'; Remarks = 'Plans from stored profiles.' }
            @{ Code = 'Get-ComputeUnit -CpuGroup Core | Invoke-Profile -Model tinynet | Get-BatchPlan -BatchSize 256 -Algorithm Greedy'; Remarks = 'Profiles, then plans with the seed''s greedy algorithm.' }
            @{ Code = 'Get-BatchPlan -Model mobilenet -BatchSize 100 -EachSubset | Format-Table'; Remarks = 'What each subset of units would predict.' }
        )
    }
    'Invoke-PartitionedInference' = @{
        Synopsis    = 'Runs a batch split across compute units in parallel and returns the outputs in input order, with timings; streams a job over files and returns a prediction for each.'
        Description = 'Each unit runs its share on its own long-lived worker thread (CPU units pinned to their cores) with a cached ONNX Runtime session, warmed before timing. Every share is a view into one input buffer and writes straight into one output buffer, so outputs come back in input order with no copies. Inputs are seeded synthetic tensors (-Seed). If a unit fails mid-run, its unfinished samples run on the other units and the result names the failure; if all fail, the command stops with AllUnitsFailed. With -Balance Dynamic, units that finish early take sub-batches from the tail of slower units'' shares. Ctrl+C stops every unit. With -InputPath the command runs a job over files instead: threads decode the files into blocks (the plan''s batch, or fewer so that the blocks in flight stay within 512 MiB) while the units run earlier blocks; each block''s predictions (SamplePrediction: Index, Input, Unit, Class, Score, TopClasses, TopScores, Error) are written to the pipeline in input order as it finishes, so memory does not grow with the number of files. A file that cannot be read is a non-terminating error and a prediction with Error set; the job goes on. The job''s summary (JobSummary: samples, images/s, where time went, peak memory) goes to the information stream (-InformationVariable) and -Verbose.'
        Parameters  = @{
            NoCalibration = 'Plan from the profiles alone. By default a plan scales each unit''s profiled times by how its last runs of the model compared with their predictions (a weighted median of up to 8 runs that takes effect when 3 agree, recorded by Invoke-PartitionedInference in the profile store; see about_HeteroBatch); the plan''s Calibrated and CostsFrom say which. With Invoke-PartitionedInference it also keeps this run from being recorded.' 
            Plan        = 'The plan to run, piped from Get-BatchPlan.'
            Model       = 'Plan from stored profiles of this model and run it: a built-in name or an .onnx path.'
            BatchSize   = 'The number of samples (with -Model).'
            Unit        = 'Only these units (with -Model; ids, wildcards allowed).'
            Algorithm   = 'The planning algorithm (with -Model): Optimal, Greedy, Proportional, Even or Single.'
            ProfilePath = 'The profile store folder (with -Model).'
            Balance     = 'Static (default) runs the plan as it is; Dynamic lets units that finish early take work from slower ones.'
            Seed        = 'The seed of the synthetic inputs. The same seed gives the same input for each sample, however the batch is split. Default: 1.'
            InputPath   = 'Run a job over files instead of synthetic inputs: image files (.jpg, .jpeg, .png; decoded and preprocessed as -Resize, -Mean, -Std and -ChannelOrder say, laid out as the model''s input shape says: [3,H,W] or [H,W,3], float or uint8), .npy tensors (one sample, or a batch along the first axis), or folders of them (taken in name order). Files piped from Get-ChildItem bind here.'
            OutputPath  = 'A folder to write the outputs to: one <output name>.npy per output tensor with every sample in input order, and inputs.txt naming the samples. A job over files adds predictions.csv (index, input, unit, class, score, top_classes, top_scores, error), job.json (how far it got) and summary.json; its files keep a .partial suffix until the last sample is in, and are flushed to disk after each block, so a job stopped any way (Ctrl+C, a crash, kill -9) can go on with -Resume. A folder that holds another job''s outputs is refused (OutputPathInUse) unless -Resume or -Force.'
            Resume      = 'Go on with the job in -OutputPath from its last whole block: the samples already written are not run again, and the files end as an uninterrupted run would have written them. The model, files and preprocessing must be the same (else ResumeMismatch). With no job there, starts one.'
            Force       = 'Start the job again, replacing the outputs of any job in -OutputPath.'
            Shard       = 'Run only shard k of N of the job over files, written "k/N" (0 <= k < N; ShardInvalid otherwise, or when there are fewer files than shards). The input list (folders expanded and sorted by ordinal name, files as given) is cut into N contiguous runs of whole files, as even as they allow: shard k takes files k*F/N up to (k+1)*F/N. Every shard writes its own -OutputPath (give each a folder of its own, e.g. ./out/shard-$i) with its own job.json, resumable on its own with -Resume; the shard is part of the job''s identity, so resuming a folder with another shard is ResumeMismatch. Merge the finished shards with Merge-PartitionedOutput.'
            Resize      = 'How images become the input''s size: CenterCrop (default; torchvision''s ImageNet evaluation: shorter side to 256 for a 224 input, centre 224 cut out) or Stretch (both sides to the input''s size). Resizing is bilinear with antialiasing, in the arithmetic PIL uses.'
            Mean        = 'Per-channel mean subtracted from pixel / 255 (1 or 3 values, in the model''s channel order). Default: ImageNet''s 0.485 0.456 0.406. Not used for uint8 inputs.'
            Std         = 'Per-channel standard deviation the centred values are divided by (1 or 3 values, above 0). Default: ImageNet''s 0.229 0.224 0.225.'
            ChannelOrder = 'Rgb (default) or Bgr: the order of colour channels the model takes.'
            DecodeOn    = 'Where images are decoded. Auto (default): a GPU unit with nvJPEG decodes its own share of the JPEGs straight into its memory (resized and cropped there, normalised by a prefix of the model) and CPU threads decode the rest; a GPU without nvJPEG says why in Get-ComputeUnit''s GpuDecodeReason and the job''s -Verbose. Cpu: CPU threads decode every image.'
            DecodeMode  = 'Exact (default): torchvision''s pixels. Fast: JPEGs at least twice the resize target decode at 1/2, 1/4 or 1/8 scale in the DCT first (faster on large photos; pixels within a few levels of Exact).'
            DecodeThreads = 'Threads that read and decode input files. Default: one for each processor that no CPU unit of the plan computes on and no GPU is fed from (at least 1, pinned to those processors), and one more (up to one per processor) each time the units had to wait for input.'
            Repeat      = 'Run the whole input this many times; WallMs is the median and RepeatWallMs lists every run. Default: 1.'
            Top         = 'How many top classes each prediction lists, for classifier outputs. Default: 5.'
        }
        Examples    = @(
            @{ Code = 'Get-ComputeUnit | Invoke-Profile -Model vgg-16 | Get-BatchPlan -BatchSize 100 | Invoke-PartitionedInference'; Remarks = 'The whole path: measure, plan, run.' }
            @{ Code = '$r = Invoke-PartitionedInference -Model mobilenet -BatchSize 64; $r.Units | Format-Table'; Remarks = 'Plans from stored profiles and runs; shows what each unit did.' }
            @{ Code = '$r = Get-BatchPlan -Model tinynet -BatchSize 50 | Invoke-PartitionedInference -Balance Dynamic; $r.Top1'; Remarks = 'Runs with dynamic balance and prints the top class of each sample.' }
            @{ Code = 'Get-ChildItem ./photos -Filter *.jpg | Invoke-PartitionedInference -Plan $plan | Export-Csv ./classes.csv'; Remarks = 'Classifies a folder of photos and writes one row per photo, with memory bounded however many there are.' }
            @{ Code = 'Invoke-PartitionedInference -Plan $plan -InputPath ./photos -OutputPath ./out/shard-$env:SLURM_ARRAY_TASK_ID -Shard "$env:SLURM_ARRAY_TASK_ID/8" -Resume | Out-Null'; Remarks = 'One of eight shards of a job, as a task of a Slurm array; Merge-PartitionedOutput ./out/shard-* ./out/all joins them once all are done.' }
            @{ Code = 'Invoke-PartitionedInference -Plan $plan -InputPath ./photos -OutputPath ./out -Resume -InformationVariable job | Out-Null; $job.MessageData'; Remarks = 'A resumable job: run it again after a stop and it goes on where it was; predictions.csv and one .npy per output land in ./out. $job.MessageData is the summary.' }
        )
    }
    'Start-InferenceServer' = @{
        Synopsis    = 'Serves a plan''s model over the Open Inference Protocol (KServe v2, REST) from this machine''s units.'
        Description = 'Listens on -Address:-Port (127.0.0.1:8000 by default: this machine only) and answers the protocol''s REST endpoints: GET /v2/health/live and /v2/health/ready, GET /v2 (server metadata, with the extensions binary_tensor_data, model_configuration and statistics), GET /v2/models/<model> (inputs and outputs, batch dimension -1) and /v2/models/<model>/ready, Triton''s model_configuration and statistics extensions (GET /v2/models/<model>/config: tensors and max_batch_size, the samples that fit in -MaxRequestBytes; GET /v2/models/<model>/stats and /v2/models/stats: samples, requests, failures and their time) and a JSON error naming the extension for the endpoints of those it lacks (model_repository, shared memory, trace, logging), and POST /v2/models/<model>/infer with tensors as JSON data or as binary data (Inference-Header-Content-Length). For a model with one image input it also serves <model>_encoded (one BYTES input, an image file a sample, decoded here with ImageNet''s preprocessing in exact mode; metadata, ready and infer), which file jobs on other hosts send their images to as files. The model is served under its HeteroBatch name. Each infer request runs as a partitioned run of the plan scaled to its samples, one request at a time; requests up to -MaxRequestBytes are taken (a larger one gets 413, or RESOURCE_EXHAUSTED over gRPC, and counts in Failures), and as many infer requests are held at once as fit in 4 GiB at that size (8 at the default 512 MiB, at least 1); later ones wait with their bodies read (a request takes its place only once its body has arrived; bodies slower than 240 bytes a second are dropped after 5 s). What the requests held take together (bodies, tensors read from them, outputs) comes out of 4 GiB before it is allocated; a request that does not fit gets 503 (ServerBusy) at once. Errors are the protocol''s JSON {"error": ...}. Health and metadata requests are answered at once however busy the units are. Another HeteroBatch (Get-ComputeUnit -Endpoint) or any client of the protocol can use it. There is no authentication unless -Token is given; then every request but the health checks needs "Authorization: Bearer <token>". Without -Wait the server runs in the background of this session until Stop-InferenceServer or the module is removed; with -Wait the command serves until Ctrl+C.'
        Parameters  = @{
            Plan    = 'The plan each request runs, piped from Get-BatchPlan.'
            Port    = 'The TCP port. Default: 8000.'
            Protocol = 'Rest (default: HTTP/1.1, the endpoints above) or Grpc: the protocol''s gRPC service GRPCInferenceService (ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer with raw_input_contents / raw_output_contents) over HTTP/2 without TLS, at grpc://address:port. Both run in Kestrel and need the ASP.NET Core runtime of the .NET that PowerShell runs on (a .NET SDK carries it); without it the error is GrpcServingUnavailable.'
            Address = 'The address to listen on. Default: 127.0.0.1 (this machine only); * listens on every address.'
            Token   = 'Require this bearer token on every request but the health checks (clients: Get-ComputeUnit -Endpoint ... -Token, or the module''s default token).'
            Wait    = 'Serve until Ctrl+C, then stop cleanly.'
            MaxRequestBytes = 'The largest infer request taken, in bytes: 1KB to 2GB - 1 (default 512MB). It also sets how many requests are held at once: 4GB / MaxRequestBytes, 1 to 8 (HandledAtOnce in Get-InferenceServer), so that requests never hold more than 4 GiB together.'
        }
        Examples    = @(
            @{ Code = 'Get-BatchPlan -Model resnet-50 -BatchSize 64 | Start-InferenceServer -Port 8000 -Wait'; Remarks = 'Serves resnet-50 from every unit of this machine until Ctrl+C.' }
            @{ Code = '$s = Get-BatchPlan -Model tinynet -BatchSize 16 | Start-InferenceServer -Port 8011; Get-ComputeUnit -Endpoint $s.Url'; Remarks = 'A server in the background, and this session''s own view of it as a remote unit.' }
            @{ Code = 'Get-BatchPlan -Model resnet-50 -BatchSize 64 | Start-InferenceServer -Protocol Grpc -Port 8001 -Address * -Wait'; Remarks = 'Serves gRPC on every address of this machine (another machine adds it with Get-ComputeUnit -Endpoint grpc://<this host>:8001).' }
        )
    }
    'Get-InferenceServer' = @{
        Synopsis    = 'Lists the inference servers this session started.'
        Description = 'Each server''s id, address, model, units, whether it runs, and how many requests and samples it has served.'
        Parameters  = @{
            Id = 'Only these servers.'
        }
        Examples    = @(
            @{ Code = 'Get-InferenceServer'; Remarks = 'Every server of this session.' }
        )
    }
    'Stop-InferenceServer' = @{
        Synopsis    = 'Stops inference servers this session started.'
        Description = 'A request running is cancelled; the port is released. Supports -WhatIf and -Confirm.'
        Parameters  = @{
            Server = 'The servers to stop, piped from Get-InferenceServer or Start-InferenceServer.'
            Id     = 'The ids of the servers to stop.'
        }
        Examples    = @(
            @{ Code = 'Get-InferenceServer | Stop-InferenceServer'; Remarks = 'Stops every server of this session.' }
        )
    }
    'Get-InferenceModel' = @{
        Synopsis    = 'Lists the built-in networks: name, input shape, parameters and GFLOPs per image.'
        Description = 'HeteroBatch builds the seed work''s ten networks (mobilenet, squeezenet_v1.0, squeezenet_v1.1, resnet-18, resnet-34, resnet-50, inception_v3, vgg-16, vgg-19, densenet-121) as ONNX graphs with seeded random weights, and tinynet, a small CNN for tests and quick demos. They are written once into a cache folder (Get-HeteroBatchOption''s ModelCacheFolder: $env:HETEROBATCH_CACHE/models at import, else the user cache folder) and rebuilt if damaged. Parameters counts trainable parameters as the reference architectures do; GFlops is 2 x the multiply-accumulates of convolutions and dense layers.'
        Parameters  = @{
            Name = 'Names to return (wildcards allowed).'
        }
        Examples    = @(
            @{ Code = 'Get-InferenceModel'; Remarks = 'Every built-in network.' }
            @{ Code = 'Get-InferenceModel resnet*'; Remarks = 'The ResNets.' }
        )
    }
    'Export-InferenceModel' = @{
        Synopsis    = 'Writes a built-in network to an .onnx file.'
        Description = 'Writes the network''s ONNX graph (opset 17, seeded weights) through a temporary file that is renamed into place, so a failure never leaves a half-written file. The batch dimension is symbolic unless -FixedBatchSize is given.'
        Parameters  = @{
            Precision      = 'Fp16 writes the model converted to fp16: weights and inner tensors in fp16, inputs and outputs still float32, reductions and exponentials kept in fp32. Fp32 (the default) and Tf32 write it as it is. Works for built-in networks and for an .onnx file given as -Model.' 
            Model          = 'The built-in network to export, or the path of an .onnx file (to write it at another -Precision; weights it keeps in external data files are read into the one file written, up to 2 GiB, else PrecisionUnsupported). -Name is an alias (Get-InferenceModel output binds by it).'
            Path           = 'The file to write.'
            FixedBatchSize = 'Fix the batch dimension to this size instead of leaving it symbolic.'
            Force          = 'Replace the file if it exists; without it an existing file is a FileExists error (the same rule as Export-PerformanceChart). Supports -WhatIf and -Confirm.'
        }
        Examples    = @(
            @{ Code = 'Export-InferenceModel resnet-50 ./resnet-50.onnx'; Remarks = 'Writes ResNet-50 with a symbolic batch dimension.' }
        )
    }
    'Get-PerformanceProfile' = @{
        Synopsis    = 'Returns stored performance tables, filtered by model and unit.'
        Description = 'Reads the profile store. A file that is not a valid profile is moved aside (never overwritten) and reported with a ProfileCorrupt warning. Each profile''s Table property lists its measurements by batch size; profiles bind to Get-BatchPlan from the pipeline.'
        Parameters  = @{
            Model       = 'Only profiles of this model (its name or content hash).'
            Unit        = 'Only these units (ids, wildcards allowed).'
            ProfilePath = 'The profile store folder. Default: Get-HeteroBatchOption''s ProfileStorePath ($env:HETEROBATCH_PROFILE_PATH at import), else the user data folder.'
            AsTable     = 'Emit the tables side by side: one row per batch size with a column of median milliseconds per unit (per model and unit when several models match), as the seed''s print_table.py printed them.'
        }
        Examples    = @(
            @{ Code = 'Get-PerformanceProfile -Model mobilenet | ForEach-Object Table | Format-Table'; Remarks = 'Prints the stored tables of MobileNet.' }
            @{ Code = 'Get-PerformanceProfile -Model vgg-16 -ProfilePath ./profiles/gpu-2xH200 -AsTable | Format-Table'; Remarks = 'Batch size by unit: the reference tables of the GPU machine side by side.' }
            @{ Code = 'Get-PerformanceProfile -Model resnet-50 | Get-BatchPlan -BatchSize 100'; Remarks = 'Plans from stored profiles through the pipeline.' }
        )
    }
    'Set-PerformanceProfile' = @{
        Synopsis    = 'Sets one batch size''s time in stored performance tables.'
        Description = 'Adds or replaces the entry of -BatchSize in each piped profile with -MedianMs and stores the profile (atomically, under the store''s lock). An edited entry has Samples 0, so it can be told from a measured one. Supports -WhatIf and -Confirm.'
        Parameters  = @{
            Profile     = 'The profiles to edit, piped from Get-PerformanceProfile.'
            BatchSize   = 'The batch size whose entry to set.'
            MedianMs    = 'The time of one run of that batch, in milliseconds.'
            ProfilePath = 'The profile store folder. Default: Get-HeteroBatchOption''s ProfileStorePath ($env:HETEROBATCH_PROFILE_PATH at import), else the user data folder.'
        }
        Examples    = @(
            @{ Code = 'Get-PerformanceProfile -Model resnet-50 -Unit cpu | Set-PerformanceProfile -BatchSize 64 -MedianMs 410'; Remarks = 'Adds a batch size the schedule did not measure.' }
        )
    }
    'Get-HeteroBatchOption' = @{
        Synopsis    = 'Returns the module''s settings: one typed object (HeteroBatch.Engine.EngineOptions).'
        Description = 'The settings are read from the environment once, when the module is imported (HETEROBATCH_PROFILE_PATH, HETEROBATCH_CACHE, HETEROBATCH_ORT_PATH, HETEROBATCH_STORE_LOCK_SECONDS, HETEROBATCH_REMOTE_TOKEN and the GPU tuning variables in about_HeteroBatch); a variable set later changes nothing until the module is imported again. Set-HeteroBatchOption changes some of them for the session. ProfileStorePath is the store commands use without -ProfilePath, ModelCacheFolder where models are written, OrtPath the ONNX Runtime loaded instead of the module''s own, StoreLockSeconds how long a store writer waits for another process''s lock. RemoteToken shows as ******** and is not written to JSON.'
        Parameters  = @{}
        Examples    = @(
            @{ Code = 'Get-HeteroBatchOption'; Remarks = 'The settings in use.' }
            @{ Code = '(Get-HeteroBatchOption).ProfileStorePath'; Remarks = 'Where profiles and observed runs are stored when a command is given no -ProfilePath.' }
        )
    }
    'Set-HeteroBatchOption' = @{
        Synopsis    = 'Changes the module''s settings for this session.'
        Description = 'Checks each value and applies it to the module''s engine context; commands that start afterwards use it. The change lasts until the module is removed or imported again (then the environment is read anew). Only the settings with a parameter here can change in a session: the others (ONNX Runtime''s path, the GPU tuning options) shape loaded sessions and are fixed at import. A bad value changes nothing and is an error: OptionInvalid (an empty path, a model cache path that is a file, a negative or non-finite lock wait), ProfilePathIsFile. Supports -WhatIf and -Confirm.'
        Parameters  = @{
            ProfilePath      = 'The profile store folder that commands use when given no -ProfilePath (Invoke-Profile, Get-BatchPlan, Get-/Set-/Remove-PerformanceProfile, and the runs recorded for calibration). A PowerShell path; it need not exist yet.'
            ModelCachePath   = 'The folder built-in models and prepared forms of model files (rewritten batch axis, fp16) are written to. A PowerShell path.'
            StoreLockSeconds = 'Seconds a profile store writer waits for another process''s lock before ProfileStoreBusy: 0 or more (default 60).'
            RemoteToken      = 'The bearer token of remote units that Get-ComputeUnit lists afterwards without -Token or -Credential, as a SecureString (units listed before keep theirs).'
            NoRemoteToken    = 'Remove the default bearer token.'
            PassThru         = 'Also write the settings that result.'
        }
        Examples    = @(
            @{ Code = 'Set-HeteroBatchOption -ProfilePath ./profiles'; Remarks = 'Profiles, plans and calibration of this session use ./profiles without -ProfilePath on each command.' }
            @{ Code = 'Set-HeteroBatchOption -StoreLockSeconds 5 -PassThru'; Remarks = 'A store writer gives up after 5 seconds of another process''s lock, and the new settings are shown.' }
        )
    }
    'Remove-PerformanceProfile' = @{
        Synopsis    = 'Deletes stored performance tables, or some of their batch sizes.'
        Description = 'Removes the store files of the piped profiles, or with -BatchSize only those entries (the rest of each profile is kept and emitted). Supports -WhatIf and -Confirm.'
        Parameters  = @{
            Profile     = 'The profiles to remove, piped from Get-PerformanceProfile.'
            BatchSize   = 'Remove only these batch sizes'' entries.'
            ProfilePath = 'The profile store folder. Default: Get-HeteroBatchOption''s ProfileStorePath ($env:HETEROBATCH_PROFILE_PATH at import), else the user data folder.'
        }
        Examples    = @(
            @{ Code = 'Get-PerformanceProfile -Model vgg-16 -Unit gpu1 | Remove-PerformanceProfile -WhatIf'; Remarks = 'Shows what would be removed.' }
            @{ Code = 'Get-PerformanceProfile -Model tinynet | Remove-PerformanceProfile -BatchSize 33 -Confirm:$false'; Remarks = 'Drops one batch size from every tinynet profile.' }
        )
    }
    'Export-PerformanceChart' = @{
        Synopsis    = 'Draws profiles, a plan or a result as a chart (PNG or SVG).'
        Description = 'Piped profiles become one chart of samples per second against batch size, a line per unit. A piped plan becomes a bar chart of each unit''s predicted time; a piped result adds, beside each unit''s prediction, the time the unit measured in that run. The format follows the extension of -Path (.png or .svg). Writes the file and returns it.'
        Parameters  = @{
            InputObject = 'Profiles (from Invoke-Profile or Get-PerformanceProfile), a plan (from Get-BatchPlan) or a result (from Invoke-PartitionedInference).'
            Path        = 'The file to write, ending in .png or .svg; its folder is created if needed.'
            Width       = 'Width of the chart in pixels (100 to 10000, default 900).'
            Height      = 'Height of the chart in pixels (100 to 10000, default 520).'
            Force       = 'Replace the file if it exists; without it an existing file is a FileExists error (the same rule as Export-InferenceModel). Supports -WhatIf and -Confirm.'
        }
        Examples    = @(
            @{ Code = 'Get-PerformanceProfile -Model resnet-50 | Export-PerformanceChart ./resnet-50.png'; Remarks = 'Throughput by batch size of every unit with a stored resnet-50 profile.' }
            @{ Code = '$plan | Invoke-PartitionedInference | Export-PerformanceChart ./run.svg'; Remarks = 'Each unit''s predicted and measured time in one run.' }
        )
    }
    'Merge-PartitionedOutput' = @{
        Synopsis    = 'Merges the output folders of a job run in shards into one folder equal to a one-process run.'
        Description = 'Takes the folders that Invoke-PartitionedInference -InputPath -OutputPath -Shard k/N wrote, one for each shard of the job, and writes to -OutputPath what one process running the whole job would have written: predictions.csv (with each index renumbered to the whole job''s order), each output''s .npy and inputs.txt, byte for byte; and a job.json that says the job is complete. Refuses a folder that is not a finished shard (ShardUnfinished: finish it with -Resume), shards of different jobs (ShardJobMismatch: another model, file list, preprocessing or shard count), a shard not given (ShardMissing) or given twice (ShardDuplicate). Returns what it wrote (MergedOutput: Path, Model, Shards, Samples, Files, ShardFolders).'
        Parameters  = @{
            Path       = 'The shards'' output folders, every shard of the job once, in any order (wildcards are not expanded: use Get-ChildItem -Directory and pipe them).'
            OutputPath = 'The folder to write the merged outputs to; created if needed. A folder that already holds output files is refused (OutputPathInUse) unless -Force.'
            Force      = 'Replace the output files already in -OutputPath. Supports -WhatIf and -Confirm.'
        }
        Examples    = @(
            @{ Code = 'Get-ChildItem ./out -Directory -Filter shard-* | Merge-PartitionedOutput -OutputPath ./merged'; Remarks = 'Joins every shard folder under ./out into ./merged.' }
        )
    }
}
